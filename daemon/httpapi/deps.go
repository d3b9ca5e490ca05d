package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/corral-dev/corral/daemon/acl"
	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/queue"
)

// maxJobName is the longest local job name of a batch submit.
const maxJobName = 64

// resolveDeps returns each request's parents with the local names of the
// request's jobs replaced by the IDs assigned to them (ids). Names must be
// unique within the request; a reference that is no name is taken as the
// ID of an existing job (the FSM checks that it exists). A cycle among the
// request's jobs is an error naming them.
func resolveDeps(reqs []api.JobRequest, ids []string) ([][]string, error) {
	where := func(i int) string {
		if len(reqs) == 1 {
			return ""
		}
		return fmt.Sprintf("jobs[%d]: ", i)
	}
	names := map[string]int{}
	for i, r := range reqs {
		if r.Name == "" {
			continue
		}
		if len(r.Name) > maxJobName || !queue.ValidQueueName(r.Name) {
			return nil, badRequest("%sname %q must be 1-%d characters of A-Z a-z 0-9 _ . -", where(i), truncate(r.Name, maxJobName), maxJobName)
		}
		if k, dup := names[r.Name]; dup {
			return nil, badRequest("%sname %q is already used by jobs[%d]: names must be unique within a request", where(i), r.Name, k)
		}
		names[r.Name] = i
	}
	parents := make([][]string, len(reqs))
	edges := make([][]int, len(reqs))
	for i, r := range reqs {
		if n := len(r.DependsOn); n > queue.MaxParents {
			return nil, badRequest("%sdepends_on lists %d parents, over the limit of %d", where(i), n, queue.MaxParents)
		}
		for _, ref := range r.DependsOn {
			if ref == "" || len(ref) > queue.MaxParentRef {
				return nil, badRequest("%sdepends_on entry %q must be a job ID or the name of a job in this request (1-%d bytes)", where(i), truncate(ref, queue.MaxParentRef), queue.MaxParentRef)
			}
			if k, ok := names[ref]; ok {
				parents[i] = append(parents[i], ids[k])
				edges[i] = append(edges[i], k)
				continue
			}
			parents[i] = append(parents[i], ref)
		}
	}
	if cyc := queue.FindCycle(edges); cyc != nil {
		labels := make([]string, len(cyc))
		for k, i := range cyc {
			labels[k] = reqs[i].Name // only a named job can be depended on
		}
		return nil, badRequest("depends_on has a cycle: %s: a job cannot wait for itself; remove one of these dependencies", strings.Join(labels, " -> "))
	}
	return parents, nil
}

// hasDeps reports whether any job has parents.
func hasDeps(parents [][]string) bool {
	for _, p := range parents {
		if len(p) > 0 {
			return true
		}
	}
	return false
}

// checkParentsReadable requires queue:read on the queue of every parent
// this node knows (depending on a job reveals its state). A parent not
// found here is left to the leader, which rejects unknown parents.
func (h *API) checkParentsReadable(w http.ResponseWriter, authz *acl.Authorizer, specs []queue.Spec) bool {
	if h.resolver == nil {
		return true
	}
	for i := range specs {
		for _, pid := range specs[i].DependsOn {
			if p, ok := h.store.Get(pid); ok && !h.check(w, authz, permQueueRead(p.Queue)) {
				return false
			}
		}
	}
	return true
}

// blockedReason names the parents a blocked job still waits for (the
// first few, with their states).
func (h *API) blockedReason(j *queue.Job) string {
	const shown = 5
	var open []string
	for _, pid := range j.DependsOn {
		if p, ok := h.store.Get(pid); ok && p.State != queue.StateSucceeded {
			open = append(open, fmt.Sprintf("%s (%s)", pid, p.State))
		}
	}
	if len(open) == 0 {
		return ""
	}
	n, more := len(open), ""
	if n > shown {
		more = fmt.Sprintf(" and %d more", n-shown)
		open = open[:shown]
	}
	return fmt.Sprintf("waiting for %d of %d parents to succeed: %s%s", n, len(j.DependsOn), strings.Join(open, ", "), more)
}
