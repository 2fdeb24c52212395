// Command uploadbench uploads the same number of bytes to MinIO twice,
// straight through the SDK's transfer manager and through the app's
// POST /api/files, and reports throughput and peak memory. scripts/bench-upload.sh
// runs it; see there.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func main() {
	size := flag.Int64("size", 512<<20, "bytes to upload")
	appURL := flag.String("app", "", "the app's base URL")
	appPID := flag.Int("pid", 0, "the app's process id, to read its peak RSS")
	limit := flag.Int64("max-rss", 100<<20, "fail if the app's peak RSS reaches this many bytes")
	flag.Parse()
	if err := run(*size, *appURL, *appPID, *limit); err != nil {
		fmt.Fprintln(os.Stderr, "uploadbench:", err)
		os.Exit(1)
	}
}

func run(size int64, appURL string, pid int, limit int64) error {
	ctx := context.Background()
	bucket := os.Getenv("BUCKET_NAME")
	client := s3.New(s3.Options{
		BaseEndpoint:               aws.String(os.Getenv("AWS_ENDPOINT_URL_S3")),
		Region:                     "us-east-1",
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
	// The settings of scripts/bench's ceiling: 8 MiB parts, the SDK's 5 at
	// a time.
	uploader := transfermanager.New(client, func(o *transfermanager.Options) {
		o.PartSizeBytes, o.MultipartUploadThreshold = 8<<20, 8<<20
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	})
	start := time.Now()
	if _, err := uploader.UploadObject(ctx, &transfermanager.UploadObjectInput{
		Bucket: &bucket, Key: aws.String("bench/direct"), Body: io.LimitReader(newRandom(), size),
	}); err != nil {
		return fmt.Errorf("direct upload: %w", err)
	}
	report("direct SDK upload", size, time.Since(start), "this process", peakRSS("self"))

	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		part, err := mw.CreateFormFile("file", "bench.bin")
		if err == nil {
			_, err = io.Copy(part, io.LimitReader(newRandom(), size))
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	start = time.Now()
	res, err := http.Post(appURL+"/api/files", mw.FormDataContentType(), pr)
	if err != nil {
		return fmt.Errorf("upload through the app: %w", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return fmt.Errorf("upload through the app: %s: %s", res.Status, body)
	}
	rss := peakRSS(strconv.Itoa(pid))
	report("POST /api/files", size, time.Since(start), "the app", rss)
	if rss >= limit {
		return fmt.Errorf("the app's peak RSS %d MiB reached the %d MiB bound", rss>>20, limit>>20)
	}
	fmt.Printf("the app's peak RSS stayed under %d MiB\n", limit>>20)
	return nil
}

func report(what string, size int64, d time.Duration, who string, rss int64) {
	fmt.Printf("%-18s %4d MiB in %6.2fs  %7.1f MiB/s   peak RSS of %s: %d MiB\n",
		what, size>>20, d.Seconds(), float64(size)/(1<<20)/d.Seconds(), who, rss>>20)
}

// peakRSS reads VmHWM, the peak resident set size, of a process.
func peakRSS(pid string) int64 {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// newRandom returns a fast stream of incompressible bytes.
func newRandom() io.Reader {
	return rand.NewChaCha8([32]byte{1})
}
