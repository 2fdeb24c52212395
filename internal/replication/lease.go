package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/benbjohnson/litestream"
	lss3 "github.com/benbjohnson/litestream/s3"
	"github.com/superfly/ltx"

	"github.com/example/flystorage/internal/storage/s3"
)

// leaseHolder holds the replica's lease (Litestream's s3.Leaser, a JSON
// object written with conditional requests) and renews it every third
// of its TTL.
type leaseHolder struct {
	leaser *lss3.Leaser
	log    interface {
		Info(string, ...any)
		Warn(string, ...any)
		Error(string, ...any)
	}

	// tookBack is true when the lease was this machine's already (a
	// restart): nobody else wrote the replica since.
	tookBack bool

	mu      sync.Mutex
	current *litestream.Lease
	lostErr error

	lostCh   chan struct{} // closed when the lease is lost
	stopCh   chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// takeLease takes the replica's lease for c's machine, waiting while
// another machine holds it, and starts renewing it.
func takeLease(ctx context.Context, c *Client) (*leaseHolder, error) {
	l := lss3.NewLeaser()
	l.SetClient(c.bucket.Client())
	l.SetLogger(c.log)
	l.Bucket, l.Path, l.TTL, l.Owner = c.opts.S3.Bucket, c.opts.Config.Prefix, c.opts.Config.LeaseTTL, c.opts.Machine
	h := &leaseHolder{leaser: l, log: c.log, lostCh: make(chan struct{}), stopCh: make(chan struct{}), done: make(chan struct{})}
	for {
		lease, err := l.AcquireLease(ctx)
		var held *litestream.LeaseExistsError
		switch {
		case err == nil:
			c.log.Info("took the replica's lease", "replica", c.URL(), "owner", l.Owner, "generation", lease.Generation)
			h.current = lease
			go h.renewLoop()
			return h, nil
		case errors.As(err, &held) && held.Owner == l.Owner:
			// This machine's own lease, from before it restarted: a
			// conditional write on the lease's ETag takes it back, and
			// fails if another machine wrote it meanwhile.
			if lease, err = takeBack(ctx, l, c.bucket); err == nil {
				c.log.Info("took back this machine's lease on the replica", "replica", c.URL(), "owner", l.Owner, "generation", lease.Generation)
				h.current, h.tookBack = lease, true
				go h.renewLoop()
				return h, nil
			}
			if !errors.Is(err, litestream.ErrLeaseNotHeld) {
				return nil, fmt.Errorf("taking back the lease on %s: %w", c.URL(), err)
			}
		case errors.As(err, &held) && c.opts.Follow:
			return nil, &HeldError{Holder: held.Owner, ExpiresAt: held.ExpiresAt}
		case errors.As(err, &held):
			wait := max(time.Until(held.ExpiresAt), 0) + 100*time.Millisecond
			c.log.Info("waiting for the replica's lease: another machine writes it", "replica", c.URL(), "holder", held.Owner, "until", held.ExpiresAt)
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("waiting for the lease on %s, held by %s: %w", c.URL(), held.Owner, ctx.Err())
			case <-time.After(wait):
			}
		default:
			return nil, fmt.Errorf("taking the lease on %s: %w", c.URL(), err)
		}
	}
}

// takeBack renews the lease object as it stands in the bucket, which
// names this machine as its owner.
func takeBack(ctx context.Context, l *lss3.Leaser, bucket *s3.Bucket) (*litestream.Lease, error) {
	lease, etag, err := readLease(ctx, bucket, l.Bucket, l.Path)
	if err != nil {
		return nil, err
	}
	if lease == nil || lease.Owner != l.Owner || etag == "" {
		return nil, litestream.ErrLeaseNotHeld
	}
	lease.ETag = etag
	return l.RenewLease(ctx, lease)
}

// readLease reads the lease object under prefix: nil when there is none.
func readLease(ctx context.Context, bucket *s3.Bucket, name, prefix string) (*litestream.Lease, string, error) {
	key := lss3.DefaultLeasePath
	if prefix != "" {
		key = prefix + "/" + key
	}
	out, err := bucket.Client().GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(name), Key: aws.String(key)})
	var missing *types.NoSuchKey
	if errors.As(err, &missing) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	defer out.Body.Close()
	var lease litestream.Lease
	if err := json.NewDecoder(io.LimitReader(out.Body, 1<<16)).Decode(&lease); err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", key, err)
	}
	return &lease, aws.ToString(out.ETag), nil
}

// renewLoop renews the lease every third of its TTL until stop. Should a
// renewal fail because another machine holds the lease, or should none
// succeed until the lease is about to expire, the lease is lost.
func (h *leaseHolder) renewLoop() {
	defer close(h.done)
	ttl := h.leaser.TTL
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-h.stopCh:
			return
		case <-tick.C:
		}
		h.mu.Lock()
		cur := h.current
		h.mu.Unlock()
		ctx, cancel := context.WithDeadline(context.Background(), cur.ExpiresAt.Add(-ttl/10))
		next, err := h.leaser.RenewLease(ctx, cur)
		cancel()
		switch {
		case err == nil:
			h.mu.Lock()
			h.current = next
			h.mu.Unlock()
		case errors.Is(err, litestream.ErrLeaseNotHeld), time.Now().After(cur.ExpiresAt.Add(-ttl / 10)):
			h.lose(fmt.Errorf("lost the replica's lease (owner %s): %w", h.leaser.Owner, err))
			return
		default:
			h.log.Warn("renewing the replica's lease failed; retrying", "err", err, "expires", cur.ExpiresAt)
		}
	}
}

func (h *leaseHolder) lose(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lostErr == nil {
		h.lostErr = err
		close(h.lostCh)
		h.log.Error("stopped writing to the replica: another machine may write it now", "err", err)
	}
}

// err returns why the lease was lost, or nil while it is held.
func (h *leaseHolder) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lostErr
}

// stop ends the renewals.
func (h *leaseHolder) stop() {
	h.stopOnce.Do(func() { close(h.stopCh) })
	<-h.done
}

// release gives the lease up, so that another machine may take it at
// once. Call stop first.
func (h *leaseHolder) release(ctx context.Context) error {
	h.mu.Lock()
	cur := h.current
	h.mu.Unlock()
	if err := h.leaser.ReleaseLease(ctx, cur); err != nil && !errors.Is(err, lss3.ErrLeaseAlreadyReleased) {
		return fmt.Errorf("releasing the replica's lease: %w", err)
	}
	return nil
}

// fencedClient is Litestream's client for the replica, which refuses to
// write once the lease is lost: from then on another machine may be the
// writer, and its files must not be overwritten or deleted.
type fencedClient struct {
	litestream.ReplicaClient
	lost <-chan struct{}
}

func (f *fencedClient) check() error {
	select {
	case <-f.lost:
		return litestream.ErrLeaseNotHeld
	default:
		return nil
	}
}

func (f *fencedClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return f.ReplicaClient.WriteLTXFile(ctx, level, minTXID, maxTXID, r)
}

func (f *fencedClient) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	if err := f.check(); err != nil {
		return err
	}
	return f.ReplicaClient.DeleteLTXFiles(ctx, a)
}

func (f *fencedClient) DeleteAll(ctx context.Context) error {
	if err := f.check(); err != nil {
		return err
	}
	return f.ReplicaClient.DeleteAll(ctx)
}
