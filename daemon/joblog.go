package daemon

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// jobLogs keeps each attempt's output under data_dir/logs/<job-id>/<attempt>.log
// on the node that ran it.
type jobLogs struct {
	dir string
}

func newJobLogs(dataDir string) *jobLogs {
	return &jobLogs{dir: filepath.Join(dataDir, "logs")}
}

// path returns the log file of one attempt. Job IDs are ULIDs made by the
// leader, but they are checked anyway so a path can never leave the dir.
func (l *jobLogs) path(id string, attempt int) (string, error) {
	if id == "" || filepath.Base(id) != id || id == "." || id == ".." {
		return "", fmt.Errorf("invalid job id %q", id)
	}
	return filepath.Join(l.dir, id, strconv.Itoa(attempt)+".log"), nil
}

// create opens a fresh log file for an attempt.
func (l *jobLogs) create(id string, attempt int) (io.WriteCloser, error) {
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
func (l *jobLogs) open(id string, attempt int) (*os.File, error) {
	p, err := l.path(id, attempt)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

// remove deletes a purged job's logs.
func (l *jobLogs) remove(id string) error {
	if id == "" || filepath.Base(id) != id {
		return nil
	}
	return os.RemoveAll(filepath.Join(l.dir, id))
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
