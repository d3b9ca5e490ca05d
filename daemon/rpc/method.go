package rpc

import "strconv"

// Method identifies what a stream is for. It is the first thing a client
// sends on a stream. The values are part of the wire protocol: never
// renumber one, only add.
type Method uint8

// The node-to-node methods. The daemon registers a handler for each on its
// Server (except MethodPing, which is built in); the transport itself gives
// them no meaning.
const (
	// MethodInvalid is the zero Method; no handler can be registered for it.
	MethodInvalid Method = 0
	// MethodPing checks that a peer's RPC server answers; every Server
	// answers it (a Ping for a Ping).
	MethodPing Method = 1
	// MethodForward carries writes a follower forwards to the leader.
	MethodForward Method = 2
	// MethodDispatch is a worker's long-lived stream to the leader: credits
	// and reports up, leases and acknowledgements down.
	MethodDispatch Method = 3
	// MethodJobLogs streams a job's output log from the node that ran it.
	MethodJobLogs Method = 4
	// MethodStats reads a node's runtime statistics.
	MethodStats Method = 5
	// MethodRead is a consistent read, answered by the leader after it
	// verified its leadership.
	MethodRead Method = 6
	// MethodProgress reads the progress of a job running on the node.
	MethodProgress Method = 7
)

var methodNames = [...]string{
	MethodInvalid:  "invalid",
	MethodPing:     "ping",
	MethodForward:  "forward",
	MethodDispatch: "dispatch",
	MethodJobLogs:  "job_logs",
	MethodStats:    "stats",
	MethodRead:     "read",
	MethodProgress: "progress",
}

// String returns the method's name, or "method(N)" for a number without one.
func (m Method) String() string {
	if int(m) < len(methodNames) {
		return methodNames[m]
	}
	return "method(" + strconv.Itoa(int(m)) + ")"
}

// Proto is the first byte of a connection on the node port; it selects the
// protocol the rest of the connection speaks.
type Proto byte

const (
	// ProtoRaft selects raft: the connection is handed to the raft transport.
	ProtoRaft Proto = 0x01
	// ProtoRPC selects node RPC: the connection becomes a yamux session.
	// It doubles as the node RPC protocol version: 0x02 was node RPC with
	// every body in msgpack; 0x03 sends the hot messages in the binary
	// layout of wire_codec.go. A Mux closes a 0x02 connection with a WARN
	// naming the old version, so a mixed-version pair fails loudly instead
	// of misparsing.
	ProtoRPC Proto = 0x03
	// protoRPCv1 is the retired ProtoRPC of msgpack-only node RPC.
	protoRPCv1 Proto = 0x02
)

// String returns "raft", "rpc" or the byte in hex.
func (p Proto) String() string {
	switch p {
	case ProtoRaft:
		return "raft"
	case ProtoRPC:
		return "rpc"
	}
	return "0x" + strconv.FormatUint(uint64(p)|0x100, 16)[1:]
}
