package httpapi

import (
	"encoding/base64"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/corral-dev/corral/queue"
)

// listCursor is a position in the job list's order (newest first: by
// creation time, then ID, both descending). A page continues strictly
// after it, so a job is listed once across pages whatever is submitted
// meanwhile: new jobs sort before the position.
type listCursor struct {
	created int64 // unix nanos
	id      string
}

// maxCursorID bounds the ID inside a cursor.
const maxCursorID = 128

// cursorOf returns the opaque cursor of the position just after j.
func cursorOf(j *queue.Job) string {
	raw := strconv.FormatInt(j.CreatedAt.UnixNano(), 10) + "." + j.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// parseCursor reads ?cursor= (nil when absent).
func parseCursor(s string) (*listCursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := badRequest("cursor=%q is not a next_cursor of this API: list again without a cursor", truncate(s, 64))
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	ns, id, ok := strings.Cut(string(raw), ".")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" || len(id) > maxCursorID {
		return nil, bad
	}
	return &listCursor{created: n, id: id}, nil
}

// position returns the index of the first job of jobs (in list order)
// that comes after the cursor.
func (c *listCursor) position(jobs []*queue.Job) int {
	return sort.Search(len(jobs), func(i int) bool {
		n := jobs[i].CreatedAt.UnixNano()
		return n < c.created || (n == c.created && jobs[i].ID < c.id)
	})
}

// parseSince reads ?since=: an RFC 3339 time, or a duration meaning that
// long before now. Zero when absent.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, badRequest("since=%q: want a duration such as 1h or an RFC 3339 time such as 2026-01-02T15:04:05Z", truncate(s, 64))
}
