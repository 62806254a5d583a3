package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Checker pings the database over a connection of its own, outside the pool: a burst that
// holds every pooled connection must not make the background check wait for one and report
// the database down. It connects on its first Ping and again after a Ping that failed, so an
// outage shows as failed pings and a recovery as a successful one.
type Checker struct {
	cfg     *pgx.ConnConfig
	observe func(op string, d time.Duration, err error)

	mu   sync.Mutex // one Ping at a time: a pgx.Conn is not safe for concurrent use
	conn *pgx.Conn
}

// CheckerApplicationName is the application_name of the Checker's connection, to tell it from
// the pool's in pg_stat_activity.
const CheckerApplicationName = "tokensvc-dbcheck"

// NewChecker returns a Checker that connects as pool does (same server, credentials, TLS and
// run-time parameters). observe, if not nil, is told the latency of every ping ("ping").
func NewChecker(pool *pgxpool.Pool, observe func(op string, d time.Duration, err error)) *Checker {
	if observe == nil {
		observe = func(string, time.Duration, error) {}
	}
	cfg := pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = CheckerApplicationName
	return &Checker{cfg: cfg, observe: observe}
}

// Ping checks that the database answers on the Checker's connection, connecting first if it
// has none; ctx bounds both.
func (c *Checker) Ping(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := time.Now()
	err := c.ping(ctx)
	c.observe("ping", time.Since(start), err)
	if err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

func (c *Checker) ping(ctx context.Context) error {
	if c.conn == nil {
		conn, err := pgx.ConnectConfig(ctx, c.cfg)
		if err != nil {
			return err
		}
		c.conn = conn
	}
	if err := c.conn.Ping(ctx); err != nil {
		// The connection may be broken, or mid-protocol after a cancelled ping: start afresh.
		c.closeConn()
		return err
	}
	return nil
}

// Close closes the Checker's connection, if it has one.
func (c *Checker) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeConn()
}

func (c *Checker) closeConn() {
	if c.conn == nil {
		return
	}
	// Bounded: a server that stopped answering must not hold up the next check or shutdown.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.conn.Close(ctx) // the connection is being dropped; its close error changes nothing
	c.conn = nil
}
