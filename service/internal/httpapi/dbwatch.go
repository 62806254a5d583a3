package httpapi

import (
	"context"
	"time"
)

// dbState is what the last database check found.
type dbState struct {
	up    bool
	since time.Time // when the database was last found in this state after the other
}

// WatchDatabase pings the database (Params.DBCheck, on its own connection) every
// Params.DBCheckInterval, each ping bounded by the interval, until ctx is done, and records whether it answered for /readyz and the
// tokensvc_database_up gauge. It logs each change, not each check.
//
// The database is not part of readiness: every replica shares it, so failing readiness on it
// would take all of them out of the Service at once, and clients would get connection refused
// instead of the JSON 503 a replica answers while the database is down. Readiness reports it
// only, so operators see it, and the gauge lets alerts fire on it.
func (s *Server) WatchDatabase(ctx context.Context) {
	t := time.NewTicker(s.p.DBCheckInterval)
	defer t.Stop()
	for {
		s.checkDatabase(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) checkDatabase(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, s.p.DBCheckInterval)
	err := s.p.DBCheck.Ping(pctx)
	cancel()
	if ctx.Err() != nil {
		return // stopping: this ping was cut short, it says nothing about the database
	}
	now := time.Now()
	prev := s.db.Load()
	if (err == nil) == prev.up {
		return
	}
	s.db.Store(&dbState{up: err == nil, since: now})
	if err != nil {
		s.p.Metrics.databaseUp.Set(0)
		s.p.Logger.Warn("database down", "err", err, "was_up_for", now.Sub(prev.since).Round(time.Millisecond).String())
		return
	}
	s.p.Metrics.databaseUp.Set(1)
	s.p.Logger.Info("database up again", "was_down_for", now.Sub(prev.since).Round(time.Millisecond).String())
}

// readiness is the body of /readyz.
type readiness struct {
	Status          string `json:"status"`
	Database        string `json:"database"`
	DatabaseDownFor string `json:"database_down_for,omitempty"`
}

func (s *Server) readiness(status string) readiness {
	db := s.db.Load()
	if db.up {
		return readiness{Status: status, Database: "up"}
	}
	return readiness{Status: status, Database: "down",
		DatabaseDownFor: time.Since(db.since).Round(100 * time.Millisecond).String()}
}
