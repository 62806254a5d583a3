package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestServer(t *testing.T) {
	s := New(t)
	ctx := context.Background()
	urls := []string{s.NewDatabase(t), s.NewDatabase(t)}
	if urls[0] == urls[1] {
		t.Fatalf("NewDatabase returned the same database twice: %s", urls[0])
	}
	for _, u := range urls {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		var fsync string
		if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil {
			t.Fatal(err)
		}
		if fsync != "off" {
			t.Errorf("fsync = %s, want off", fsync)
		}
		conn.Close(ctx)
	}
	dir := s.dir
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, urls[0]); err == nil {
		t.Fatal("server still accepts connections after Stop")
	}
	if _, err := s.CreateDatabase(ctx, "x"); err == nil {
		t.Fatalf("CreateDatabase after Stop succeeded; dir %s", dir)
	}
}

func TestFindBinDirMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := findBinDir(); err != nil && err != ErrNoBinaries {
		t.Fatalf("findBinDir error = %v", err)
	}
	if ErrNoBinaries.Error() != "PostgreSQL server binaries not found: run scripts/ensure-postgres.sh (apt-get install postgresql)" {
		t.Fatal("the error operators grep for changed")
	}
}
