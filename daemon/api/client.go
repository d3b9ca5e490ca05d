package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// DefaultAddress is where the CLI looks for an agent by default.
	DefaultAddress = "http://127.0.0.1:4780"
	// DefaultTimeout bounds every call that is neither a blocking query
	// nor a stream.
	DefaultTimeout = 30 * time.Second
	// HeaderIndex carries the raft index of a read (blocking queries).
	HeaderIndex = "X-Corral-Index"
	// HeaderToken carries the client's token.
	HeaderToken = "X-Corral-Token"

	// dialTimeout bounds connection set-up, also for streams.
	dialTimeout = 5 * time.Second
	// maxErrorBody caps how much of an error response is read.
	maxErrorBody = 64 << 10
)

var (
	// ErrNotFound is matched (errors.Is) by a 404 StatusError.
	ErrNotFound = errors.New("not found")
	// ErrConflict is matched by a 409 StatusError (e.g. retrying a job
	// that is not failed).
	ErrConflict = errors.New("conflict")
	// ErrUnavailable is matched by a 503 StatusError (no leader yet,
	// shutting down).
	ErrUnavailable = errors.New("unavailable")
	// ErrUnreachable is matched when no HTTP answer came back at all.
	ErrUnreachable = errors.New("cannot reach corral")
	// ErrBadAddress is returned by NewClient for an address it cannot use.
	ErrBadAddress = errors.New("bad address")
)

// StatusError is a non-2xx answer; Message is the server's {"error"} text.
type StatusError struct {
	Code    int
	Message string
}

// Error returns the server's message, which already says what went wrong.
func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("unexpected response: %d %s", e.Code, http.StatusText(e.Code))
	}
	return e.Message
}

// Is maps status codes onto the package's sentinels.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == http.StatusNotFound
	case ErrConflict:
		return e.Code == http.StatusConflict
	case ErrUnavailable:
		return e.Code == http.StatusServiceUnavailable
	}
	return false
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// UnreachableError is a request that got no HTTP answer: the agent is not
// running, the address is wrong, or the network failed.
type UnreachableError struct {
	Address string
	Err     error
}

// Error says where the client tried to go and why it failed, briefly.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach corral at %s: %s", e.Address, reason(e.Err))
}

// Unwrap returns the transport error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnreachable) true.
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

// reason shortens a transport error to its cause.
func reason(err error) string {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var urlErr *url.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return "timed out"
	case errors.As(err, &dnsErr):
		return dnsErr.Error()
	case errors.As(err, &opErr):
		return opErr.Err.Error()
	case errors.As(err, &urlErr):
		return urlErr.Err.Error()
	}
	return err.Error()
}

// Client talks to one Corral agent's HTTP API. It is safe for concurrent
// use.
type Client struct {
	base    *url.URL
	token   string
	http    *http.Client
	timeout time.Duration
}

// NewClient returns a client for the agent at address ("" means
// DefaultAddress; "host:port" means http://host:port). token, when set, is
// sent with every request.
func NewClient(address, token string) (*Client, error) {
	if address == "" {
		address = DefaultAddress
	}
	if !strings.Contains(address, "://") {
		address = "http://" + address
	}
	u, err := url.Parse(address)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrBadAddress, address, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w %q: want http://host:port", ErrBadAddress, address)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	// One client is often shared by many goroutines: keep their
	// connections instead of redialling (and piling up TIME_WAIT).
	transport.MaxIdleConnsPerHost = 128
	return &Client{
		base:    u,
		token:   token,
		http:    &http.Client{Transport: transport},
		timeout: DefaultTimeout,
	}, nil
}

// Address returns the agent's base URL.
func (c *Client) Address() string { return c.base.String() }

// request describes one call.
type request struct {
	method string
	path   string     // escaped, under the base URL, e.g. "/v1/jobs"
	query  url.Values // may be nil
	body   any        // JSON-encoded when non-nil
	// raw, when set, is sent as is (application/octet-stream).
	raw io.Reader
	// timeout bounds the whole call; 0 = DefaultTimeout, < 0 = none
	// (the caller's ctx still applies).
	timeout time.Duration
}

// send performs r and returns the 2xx response, whose body the caller must
// close. cancel releases the call's timeout and must be called after the
// body is consumed.
func (c *Client) send(ctx context.Context, r request) (*http.Response, context.CancelFunc, error) {
	parent := ctx
	cancel := context.CancelFunc(func() {})
	switch {
	case r.timeout == 0:
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
	case r.timeout > 0:
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
	}
	target := c.base.String() + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		// No HTML escaping: a payload's & < > reach the plugin as written.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(r.body); err != nil {
			cancel()
			return nil, nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	}
	if r.raw != nil {
		body = r.raw
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("build request: %w", err)
	}
	switch {
	case r.raw != nil:
		req.Header.Set("Content-Type", "application/octet-stream")
	case body != nil:
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set(HeaderToken, c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		if parent.Err() != nil {
			return nil, nil, parent.Err() // the caller gave up
		}
		return nil, nil, &UnreachableError{Address: c.base.String(), Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer cancel()
		defer resp.Body.Close()
		return nil, nil, statusError(resp)
	}
	return resp, cancel, nil
}

// statusError reads an error answer.
func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var e Error
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return &StatusError{Code: resp.StatusCode, Message: e.Error}
	}
	msg := strings.TrimSpace(string(b))
	if msg == "" || strings.ContainsAny(msg, "\n") || len(msg) > 200 {
		msg = fmt.Sprintf("unexpected response: %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return &StatusError{Code: resp.StatusCode, Message: msg}
}

// call performs r and decodes a JSON answer into out (when non-nil). It
// returns the X-Corral-Index of the answer (0 when absent).
func (c *Client) call(ctx context.Context, r request, out any) (uint64, error) {
	resp, cancel, err := c.send(ctx, r)
	if err != nil {
		return 0, err
	}
	defer cancel()
	defer resp.Body.Close()
	index, _ := strconv.ParseUint(resp.Header.Get(HeaderIndex), 10, 64)
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return index, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return index, fmt.Errorf("decode %s %s answer: %w", r.method, r.path, err)
	}
	return index, nil
}

// stream is an io.ReadCloser that also releases the call's context.
type stream struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (s *stream) Close() error {
	err := s.ReadCloser.Close()
	s.cancel()
	return err
}
