package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Logs keeps each attempt's output under data_dir/logs/<job-id>/<attempt>.log
// on the node that ran it.
type Logs struct {
	dir string
}

// NewLogs keeps logs under dataDir/logs.
func NewLogs(dataDir string) *Logs {
	return &Logs{dir: filepath.Join(dataDir, "logs")}
}

// path returns the log file of one attempt. Job IDs are ULIDs made by the
// leader, but they are checked anyway so a path can never leave the dir.
func (l *Logs) path(id string, attempt int) (string, error) {
	if id == "" || filepath.Base(id) != id || id == "." || id == ".." {
		return "", fmt.Errorf("invalid job id %q", id)
	}
	return filepath.Join(l.dir, id, strconv.Itoa(attempt)+".log"), nil
}

// create opens a fresh log file for an attempt.
func (l *Logs) create(id string, attempt int) (io.WriteCloser, error) {
	p, err := l.path(id, attempt)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create job log: %w", err)
	}
	return &lineWriter{f: f, w: bufio.NewWriter(f)}, nil
}

// open opens an attempt's log for reading.
func (l *Logs) open(id string, attempt int) (*os.File, error) {
	p, err := l.path(id, attempt)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

// sweep removes the log directories of jobs that no longer exist (purged
// by retention), so data_dir/logs stays bounded like the state. A
// directory younger than minAge is kept: this node may run a job whose
// claim it has not applied yet.
func (l *Logs) sweep(exists func(id string) bool, minAge time.Duration, now time.Time) (int, error) {
	entries, err := os.ReadDir(l.dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read log dir: %w", err)
	}
	removed := 0
	for _, e := range entries {
		if !e.IsDir() || exists(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < minAge {
			continue
		}
		if err := os.RemoveAll(filepath.Join(l.dir, e.Name())); err != nil {
			return removed, fmt.Errorf("remove logs of %s: %w", e.Name(), err)
		}
		removed++
	}
	return removed, nil
}

// lineWriter flushes after each write so followers see lines promptly.
type lineWriter struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

func (lw *lineWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	n, err := lw.w.Write(p)
	if err == nil {
		err = lw.w.Flush()
	}
	return n, err
}

func (lw *lineWriter) Close() error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	err := lw.w.Flush()
	if cerr := lw.f.Close(); err == nil {
		err = cerr
	}
	return err
}

const (
	// logSweepEvery is how often a node removes the logs of purged jobs.
	logSweepEvery = 10 * time.Minute
	// logSweepMinAge keeps the logs of jobs this node may not know yet.
	logSweepMinAge = time.Minute
)

// Sweep removes the logs of purged jobs (exists says which jobs are
// still there) every logSweepEvery until ctx ends.
func (l *Logs) Sweep(ctx context.Context, exists func(id string) bool, logger hclog.Logger) {
	ticker := time.NewTicker(logSweepEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return
		}
		if n, err := l.sweep(exists, logSweepMinAge, time.Now()); err != nil {
			logger.Warn("cannot remove logs of purged jobs", "error", err)
		} else if n > 0 {
			logger.Info("removed logs of purged jobs", "jobs", n)
		}
	}
}
