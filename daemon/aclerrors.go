package daemon

import (
	"github.com/corral-dev/corral/daemon/rpc"
	"github.com/corral-dev/corral/queue"
)

// ACL errors keep their meaning when a follower forwards an ACL write to
// the leader (a second bootstrap is a 409 on any node).
func init() {
	rpc.RegisterError("acl_bootstrapped", queue.ErrACLBootstrapped)
	rpc.RegisterError("acl_not_found", queue.ErrACLNotFound)
	rpc.RegisterError("bad_acl", queue.ErrBadACL)
}
