// Package rpc is Corral's node-to-node transport: raft and the node RPC share
// one port (the raft port), and node RPC runs over one long-lived, multiplexed
// connection per node pair.
//
// # Planes on the node port
//
// A [Mux] owns the listener. Every accepted connection first completes a TLS
// handshake when [Config.TLS] is set, then sends one protocol byte:
// [ProtoRaft] hands the connection to raft through [Mux.RaftLayer] (a
// raft.StreamLayer whose Accept only ever returns raft connections);
// [ProtoRPC] starts a yamux server session whose streams are served by a
// [Server]. Any other byte closes the connection with one WARN log line
// (0x02, the ProtoRPC of versions whose node RPC was msgpack only, gets a
// WARN naming it as an incompatible older peer). The
// handshake and the byte are read in a per-connection goroutine under
// [Config.HandshakeTimeout], so a slow or silent client never blocks Accept.
//
// # Wire format
//
// A yamux stream carries one call or one long-lived exchange. Both directions
// are a sequence of frames:
//
//	uint32 big-endian N | kind byte | N-1 bytes of body
//
// N never exceeds [Config.MaxFrameBytes]; a longer header fails the stream
// with [ErrFrameTooLarge] before anything is allocated for the body. The
// hot messages have a hand-written binary body: the dispatch stream's
// [Hello], [Up] and [Down] and the forward call's [ApplyRequest] and
// [ApplyResponse] (jobs inside it in queue.AppendJob's encoding). Such a
// body starts with the byte 0xC1, which msgpack never uses; wire_codec.go
// documents the layout. Every other body (open and error frames, the
// other methods' messages) is encoded with one shared
// github.com/hashicorp/go-msgpack/v2 MsgpackHandle, so []byte fields travel
// as raw msgpack bin (no base64, no JSON). Which encoding a message gets
// depends only on its Go type, on both sides: the binary layout needs a
// pointer (send &Up{...}, not Up{...}). The first frame a client sends is an open frame naming the [Method]; after it come
// data frames. A server ends a stream either cleanly (FIN, seen by the client
// as io.EOF on [Stream.Recv]) or with one error frame carrying a code and a
// message (see [RegisterError] and [RemoteError]).
//
// # Calls and streams
//
// A [Pool] keeps one yamux session per remote address and opens one stream per
// [Pool.Call] (request/response) or [Pool.Open] (a bidirectional [Stream], e.g.
// the worker↔leader dispatch stream). [Server.Local] and [Server.LocalCall]
// reach the same handlers in-process through net.Pipe with the same framing
// and the same yamux session logic, so the leader's own worker uses exactly
// the interface a remote worker uses.
//
// # Did the request reach the peer?
//
// Errors from [Pool.Call], [Pool.Open], [Server.LocalCall] and [Stream] fall
// into three classes; callers that retry writes must tell them apart:
//
//   - errors.Is(err, ErrUnreachable): nothing of the request left this node
//     (dial or TLS failure, the pool or session was closed or dropped before
//     the stream opened, ctx ended before the stream opened). Safe to retry
//     anywhere.
//   - a [*RemoteError] (errors.As), which also matches its registered sentinel
//     with errors.Is: the handler ran, or the server refused the call
//     ([ErrUnknownMethod], [ErrFrameTooLarge], [ErrBadFrame] from the peer),
//     and answered with that error. Whether anything was applied is the
//     handler's contract (e.g. "not_leader" means nothing was).
//   - anything else: [ErrConnLost] (session died, [Pool.Drop], stream reset,
//     peer closed before answering), the ctx error (context.Canceled or
//     context.DeadlineExceeded after the stream opened), or a local decode or
//     framing error on the answer. The request MAY have reached the peer and
//     may have been applied; only an idempotent retry is safe.
//
// [MayHaveReached] encodes this rule.
package rpc
