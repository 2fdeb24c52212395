package mysql_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/testenv"
)

// TestDroppedConnections goes through a proxy that drops connections the
// way a provider's proxy or a failover does. An idle connection dropped
// between requests goes unnoticed: the next statement runs on a fresh one.
// A connection lost after a write was sent, and applied, fails that write
// with ErrUnavailable and ErrOutcomeUnknown, and the next request works.
func TestDroppedConnections(t *testing.T) {
	u, err := url.Parse(testenv.MySQLURL(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newCutProxy(t, u.Host)
	u.Host = p.addr
	db := open(t, u.String(), nil)
	ctx := context.Background()
	now := storage.Now()
	note := func(title string) storage.Note {
		return storage.Note{ID: storage.NewID(), Title: title, CreatedAt: now, UpdatedAt: now}
	}

	p.dropAll()
	if err := db.CreateNote(ctx, note("after idle drop")); err != nil {
		t.Errorf("CreateNote after the idle connections were dropped = %v, want it to reconnect", err)
	}

	lost := note("lost reply")
	p.dropReplyTo.Store(true)
	err = db.CreateNote(ctx, lost)
	if !errors.Is(err, storage.ErrUnavailable) || !errors.Is(err, storage.ErrOutcomeUnknown) {
		t.Errorf("CreateNote whose reply was lost = %v, want ErrUnavailable and ErrOutcomeUnknown", err)
	}
	if p.dropReplyTo.Load() {
		t.Fatal("the proxy never saw the INSERT")
	}
	// The outcome was unknown to the app, yet the server had committed it.
	if _, err := db.GetNote(ctx, lost.ID); err != nil {
		t.Errorf("GetNote after the lost reply = %v, want the note the server committed", err)
	}
}

// cutProxy forwards TCP to a server, and drops connections on demand.
type cutProxy struct {
	addr   string
	server string
	// dropReplyTo, when set, makes the proxy forward the next INSERT INTO
	// notes, wait for the server's reply, and close the connection instead
	// of passing the reply on.
	dropReplyTo atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
}

func newCutProxy(t *testing.T, server string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{addr: ln.Addr().String(), server: server}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.dropAll()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.serve(client) })
		}
	})
	return p
}

func (p *cutProxy) serve(client net.Conn) {
	server, err := net.Dial("tcp", p.server)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, client, server)
	p.mu.Unlock()
	defer client.Close()
	defer server.Close()
	var dropNext atomic.Bool
	go func() {
		defer server.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 && bytes.Contains(buf[:n], []byte("INSERT INTO notes")) && p.dropReplyTo.Load() {
				dropNext.Store(true)
			}
			if n > 0 {
				if _, werr := server.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 && dropNext.Load() {
			p.dropReplyTo.Store(false)
			return // the server replied; the client never hears it
		}
		if n > 0 {
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// dropAll closes every connection through the proxy.
func (p *cutProxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
