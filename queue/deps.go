package queue

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/corral-dev/corral/internal/binenc"
)

// Job dependencies. A job's parents are in its Spec.DependsOn; the
// reverse edges are in state.children. The rules, identical on every node:
//
//   - A SubmitDAG creates a batch of jobs atomically. A parent is an
//     existing job or a job of the same batch; an unknown parent, a cycle
//     or a parent that already failed or was cancelled rejects the whole
//     batch (state untouched). A parent that already succeeded is no wait.
//   - A job with a parent that has not succeeded is blocked: claims never
//     see it. When its last parent succeeds it becomes queued (scheduled
//     if its run_at is still ahead), at the back of its priority's FIFO
//     order.
//   - When a parent ends failed or cancelled, every descendant still
//     blocked ends cancelled with the reason in its error ("parent X
//     failed"; deeper: "parent Y cancelled: parent X failed").
//   - Cancel of a blocked job works like that of a queued one. Retry of a
//     failed or cancelled child is refused while a parent is failed or
//     cancelled; otherwise the child goes back to blocked or queued
//     according to its parents.
//   - A purged job takes its edges with it: it leaves its parents' child
//     lists, and its children no longer list it. Only terminal jobs are
//     purged and a blocked job never has a failed or cancelled parent, so
//     a purge never changes what a child waits for.

// Bounds of dependencies.
const (
	// MaxParents bounds Spec.DependsOn.
	MaxParents = 100
	// MaxParentRef is the longest parent reference (a job ID or a local
	// name), in bytes.
	MaxParentRef = 128
)

// KindSubmitDAG is the command kind of SubmitDAG (see Kind: values are
// part of the log format).
const KindSubmitDAG Kind = 14

// Reason prefixes recorded in the error of a job cancelled by a parent.
const reasonParent = "parent "

// SubmitDAG creates a batch of jobs with dependencies, all or nothing.
// Specs[i].DependsOn holds job IDs: of existing jobs or of jobs of this
// batch (the leader has resolved local names to the IDs it assigned). A
// spec whose unique_key matches like in Submit creates no job and its ID
// stands for the existing job (Submitted.Existing); its own DependsOn is
// checked but ignored. Result.Submitted has one entry per spec; any
// invalid spec, unknown parent, failed or cancelled parent, or cycle makes
// Result.Err and changes nothing.
type SubmitDAG struct {
	IDs   []string // one per spec, same order
	Specs []Spec
}

// Kind implements Command.
func (*SubmitDAG) Kind() Kind { return KindSubmitDAG }

// dagPlan is a SubmitDAG checked against the state, ready to apply.
type dagPlan struct {
	existing []string   // per spec: the existing job it stands for, or ""
	parents  [][]string // per new spec: effective parent IDs, deduplicated
	blocked  []bool     // per new spec: some parent has not succeeded
}

// planDAG checks a SubmitDAG without changing anything.
func (st *state) planDAG(c *SubmitDAG) (*dagPlan, error) {
	n := len(c.Specs)
	if n == 0 {
		return nil, fmt.Errorf("%w: submit of no jobs", ErrBadSpec)
	}
	if len(c.IDs) != n {
		return nil, fmt.Errorf("%w: submit has %d ids for %d specs", ErrBadCommand, len(c.IDs), n)
	}
	label := func(i int) string { return fmt.Sprintf("jobs[%d] (%s)", i, c.IDs[i]) }
	index := make(map[string]int, n)
	for i, id := range c.IDs {
		if err := ValidateSpec(&c.Specs[i]); err != nil {
			return nil, fmt.Errorf("jobs[%d]: %w", i, err)
		}
		switch _, dup := index[id]; {
		case id == "":
			return nil, fmt.Errorf("%w: jobs[%d]: missing job id", ErrBadSpec, i)
		case dup:
			return nil, fmt.Errorf("%w: jobs[%d]: job id %q twice in the batch", ErrBadSpec, i, id)
		case st.jobs[id] != nil:
			return nil, fmt.Errorf("%w: jobs[%d]: job id %q already exists", ErrBadSpec, i, id)
		}
		index[id] = i
	}

	// Unique keys, exactly as submitOne would decide them in order.
	p := &dagPlan{existing: make([]string, n), parents: make([][]string, n), blocked: make([]bool, n)}
	keys := map[string]string{}
	for i := range c.Specs {
		key := c.Specs[i].UniqueKey
		if key == "" {
			continue
		}
		if id, ok := keys[key]; ok {
			p.existing[i] = id
		} else if id, ok := st.uniqueHolder(key); ok {
			p.existing[i] = id
		} else {
			keys[key] = c.IDs[i]
		}
	}
	// effective is the job a batch ID stands for once keys are applied.
	effective := func(k int) string {
		if p.existing[k] != "" {
			return p.existing[k]
		}
		return c.IDs[k]
	}

	edges := make([][]int, n) // new spec -> new specs of the batch it waits for
	for i := range c.Specs {
		var parents []string
		for _, ref := range c.Specs[i].DependsOn {
			pid := ref
			if k, ok := index[ref]; ok {
				pid = effective(k)
			}
			waits := true // a new job of this batch has not succeeded
			if k, ok := index[pid]; ok && p.existing[k] == "" {
				edges[i] = append(edges[i], k)
			} else {
				pj, ok := st.jobs[pid]
				switch {
				case !ok:
					return nil, fmt.Errorf("%w: jobs[%d]: parent %s not found: depends_on takes the IDs of existing jobs or the names of jobs in the same request", ErrBadSpec, i, ref)
				case pj.State == StateFailed || pj.State == StateCancelled:
					return nil, fmt.Errorf("%w: jobs[%d]: parent %s is %s: retry it first or leave it out of depends_on", ErrBadSpec, i, pid, pj.State)
				}
				waits = pj.State != StateSucceeded
			}
			if !slices.Contains(parents, pid) {
				parents = append(parents, pid)
				p.blocked[i] = p.blocked[i] || waits
			}
		}
		if p.existing[i] == "" {
			p.parents[i] = parents
		} else {
			edges[i] = nil // an existing job keeps its own parents
		}
	}
	if cyc := FindCycle(edges); cyc != nil {
		names := make([]string, len(cyc))
		for k, i := range cyc {
			names[k] = label(i)
		}
		return nil, fmt.Errorf("%w: depends_on has a cycle: %s", ErrBadSpec, strings.Join(names, " -> "))
	}
	return p, nil
}

// FindCycle returns a cycle of the graph in which node i has an edge to
// each node of edges[i], as node indices with the first one repeated at
// the end (a self-edge is [i i]); nil when the graph is acyclic. The
// search is deterministic: nodes and edges are visited in order.
func FindCycle(edges [][]int) []int {
	const (
		unseen = iota
		open
		closed
	)
	color := make([]uint8, len(edges))
	var path []int
	var visit func(i int) []int
	visit = func(i int) []int {
		color[i] = open
		path = append(path, i)
		for _, k := range edges[i] {
			if k < 0 || k >= len(edges) {
				continue
			}
			switch color[k] {
			case open:
				start := slices.Index(path, k)
				return append(slices.Clone(path[start:]), k)
			case unseen:
				if cyc := visit(k); cyc != nil {
					return cyc
				}
			}
		}
		path = path[:len(path)-1]
		color[i] = closed
		return nil
	}
	for i := range edges {
		if color[i] == unseen {
			if cyc := visit(i); cyc != nil {
				return cyc
			}
		}
	}
	return nil
}

// uniqueHolder returns the job a submit with key would be answered with
// (the rule of submitOne).
func (st *state) uniqueHolder(key string) (string, bool) {
	hid, ok := st.unique[key]
	if !ok {
		return "", false
	}
	h := st.jobs[hid]
	if !h.State.Terminal() || st.now-nanos(h.CreatedAt) < int64(h.UniqueFor) {
		return hid, true
	}
	return "", false
}

func (st *state) submitDAG(c *SubmitDAG) Result {
	p, err := st.planDAG(c)
	if err != nil {
		return Result{Err: err}
	}
	out := make([]Submitted, len(c.Specs))
	for i := range c.Specs {
		if p.existing[i] != "" {
			out[i] = Submitted{ID: p.existing[i], Existing: true}
			continue
		}
		sp := c.Specs[i]
		sp.DependsOn = p.parents[i]
		out[i] = st.createJob(c.IDs[i], &sp, p.blocked[i])
		for _, pid := range p.parents[i] {
			st.addChild(pid, c.IDs[i])
		}
	}
	return Result{Submitted: out}
}

// addChild records the edge parent -> child in the sorted child list.
func (st *state) addChild(parent, child string) {
	kids := st.children[parent]
	i, found := slices.BinarySearch(kids, child)
	if !found {
		st.children[parent] = slices.Insert(kids, i, child)
	}
}

// removeChild drops the edge parent -> child.
func (st *state) removeChild(parent, child string) {
	kids := st.children[parent]
	i, found := slices.BinarySearch(kids, child)
	if !found {
		return
	}
	if len(kids) == 1 {
		delete(st.children, parent)
		return
	}
	// Copy: a reader may still hold the old slice (Store.Children copies,
	// but keep published slices immutable anyway).
	st.children[parent] = slices.Delete(slices.Clone(kids), i, i+1)
}

// parentsDone reports whether every stored parent of j succeeded.
func (st *state) parentsDone(j *Job) bool {
	for _, pid := range j.DependsOn {
		if p, ok := st.jobs[pid]; ok && p.State != StateSucceeded {
			return false
		}
	}
	return true
}

// parentChanged applies the dependency rules after job p changed state:
// a success may unblock its children, a failure or cancellation cancels
// its blocked descendants.
func (st *state) parentChanged(p *Job) {
	if st.cascading || len(st.children[p.ID]) == 0 {
		return
	}
	switch p.State {
	case StateSucceeded:
		for _, kid := range slices.Clone(st.children[p.ID]) {
			st.maybeUnblock(st.jobs[kid])
		}
	case StateFailed, StateCancelled:
		st.cancelDescendants(p)
	}
}

// maybeUnblock moves a blocked job whose parents all succeeded on to
// queued (scheduled while its run_at is ahead).
func (st *state) maybeUnblock(j *Job) {
	if j == nil || j.State != StateBlocked || !st.parentsDone(j) {
		return
	}
	nj := st.change(j)
	if nanos(nj.RunAt) > st.now {
		nj.State = StateScheduled
	} else {
		nj.State = StateQueued
		nj.Seq = st.nextSeq()
	}
	st.put(j, nj)
}

// cancelDescendants cancels, breadth first in child order, every blocked
// descendant of root reachable through blocked jobs, recording why.
func (st *state) cancelDescendants(root *Job) {
	st.cascading = true
	defer func() { st.cascading = false }()
	cause := reasonParent + root.ID + " " + root.State.String()
	next := []string{root.ID}
	for len(next) > 0 {
		pid := next[0]
		next = next[1:]
		for _, kid := range slices.Clone(st.children[pid]) {
			j := st.jobs[kid]
			if j == nil || j.State != StateBlocked {
				continue
			}
			nj := st.change(j)
			nj.State = StateCancelled
			nj.FinishedAt = nj.UpdatedAt
			nj.Error = cause
			if pid != root.ID {
				nj.Error = reasonParent + pid + " cancelled: " + cause
			}
			st.put(j, nj)
			next = append(next, kid)
		}
	}
}

// dropEdges removes the edges of a job that was deleted (purged).
func (st *state) dropEdges(j *Job) {
	for _, pid := range j.DependsOn {
		st.removeChild(pid, j.ID)
	}
	kids := st.children[j.ID]
	delete(st.children, j.ID)
	for _, kid := range kids {
		c := st.jobs[kid]
		if c == nil {
			continue
		}
		nc := st.change(c)
		nc.DependsOn = slices.DeleteFunc(slices.Clone(c.DependsOn), func(id string) bool { return id == j.ID })
		if len(nc.DependsOn) == 0 {
			nc.DependsOn = nil
		}
		st.put(c, nc)
		st.maybeUnblock(nc)
	}
}

// retryState is the state a retried job goes back to: blocked while a
// parent has not succeeded, queued otherwise; an error when a parent is
// failed or cancelled.
func (st *state) retryState(j *Job) (State, error) {
	blocked := false
	for _, pid := range j.DependsOn {
		p, ok := st.jobs[pid]
		switch {
		case !ok:
		case p.State == StateFailed || p.State == StateCancelled:
			return StateInvalid, fmt.Errorf("%w: job %s waits for parent %s, which is %s: retry the parent first", ErrNotRetryable, j.ID, pid, p.State)
		case p.State != StateSucceeded:
			blocked = true
		}
	}
	if blocked {
		return StateBlocked, nil
	}
	return StateQueued, nil
}

// Children returns the IDs of the stored children of job id, sorted.
func (s *Store) Children(id string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.st.children[id])
}

// Deps codec: a spec's parents (the SubmitDAG command is encoded with
// Submit's, in codec.go).

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = binenc.AppendString(b, s)
	}
	return b
}

// strings decodes a list written by appendStrings (nil when empty).
func (d *decoder) strings() []string {
	n := d.Count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.Str()
	}
	return out
}

// Deps snapshot section: `n:uvarint (child:string parents)*`, children in
// ID order. The child lists are rebuilt from it.

func captureDeps(st *state) []byte {
	var ids []string
	for id, j := range st.jobs {
		if len(j.DependsOn) > 0 {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	b := binary.AppendUvarint(nil, uint64(len(ids)))
	for _, id := range ids {
		b = binenc.AppendString(b, id)
		b = appendStrings(b, st.jobs[id].DependsOn)
	}
	return b
}

func restoreDeps(st *state, d *decoder) {
	n := d.Count(2)
	prev := ""
	for i := 0; i < n && d.Err() == nil; i++ {
		id := d.Str()
		parents := d.strings()
		if d.Err() != nil {
			return
		}
		j := st.jobs[id]
		switch {
		case j == nil:
			d.Fail(fmt.Sprintf("deps of unknown job %q", id))
			return
		case i > 0 && id <= prev:
			d.Fail("deps not sorted by job id")
			return
		case len(parents) == 0:
			d.Fail(fmt.Sprintf("job %s with an empty parent list", id))
			return
		}
		prev = id
		for k, pid := range parents {
			if st.jobs[pid] == nil || pid == id || slices.Contains(parents[:k], pid) {
				d.Fail(fmt.Sprintf("job %s: bad parent %q", id, pid))
				return
			}
			st.children[pid] = append(st.children[pid], id) // ids ascend: stays sorted
		}
		// The job is not published yet (restore builds the state aside),
		// so it may be completed in place.
		j.DependsOn = parents
	}
}

// checkBlocked verifies after a restore that every blocked job waits for
// a parent that has not succeeded and that none has a failed or
// cancelled parent.
func (st *state) checkBlocked() error {
	for id, j := range st.jobs {
		if j.State != StateBlocked {
			continue
		}
		waiting := false
		for _, pid := range j.DependsOn {
			switch st.jobs[pid].State {
			case StateFailed, StateCancelled:
				return fmt.Errorf("blocked job %s has a %s parent %s", id, st.jobs[pid].State, pid)
			case StateSucceeded:
			default:
				waiting = true
			}
		}
		if !waiting {
			return fmt.Errorf("blocked job %s waits for no parent", id)
		}
	}
	return nil
}
