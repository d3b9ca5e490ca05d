package queue

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/corral-dev/corral/internal/binenc"
	"github.com/robfig/cron/v3"
)

// Errors of periodic jobs.
var (
	// ErrBadPeriodic means a periodic job definition is invalid; it is
	// wrapped with details.
	ErrBadPeriodic = errors.New("invalid periodic job")
	// ErrPeriodicNotFound means no periodic job has that name.
	ErrPeriodicNotFound = errors.New("periodic job not found")
	// ErrAlreadyFired means the tick was fired before: every tick of a
	// periodic job fires at most once, whoever leads.
	ErrAlreadyFired = errors.New("periodic tick already fired")
	// ErrBadTick means a fire names a time that is not a due tick of the
	// schedule.
	ErrBadTick = errors.New("not a due tick of the schedule")
)

// Command kinds of periodic jobs (see Kind: values are part of the log
// format).
const (
	KindSetPeriodic    Kind = 11 // *SetPeriodic
	KindDeletePeriodic Kind = 12 // *DeletePeriodic
	KindFirePeriodic   Kind = 13 // *FirePeriodic
)

// maxTickSteps bounds the walk along a schedule when looking for the latest
// due tick, so a dense schedule idle for long cannot stall Apply.
const maxTickSteps = 10000

// Overlap says what a tick does while the job of the previous firing has
// not finished yet.
type Overlap uint8

// Overlap policies. The zero value skips, the safe default.
const (
	OverlapSkip  Overlap = iota // the tick is recorded as fired but makes no job
	OverlapAllow                // the tick makes a job anyway
)

var overlapNames = [...]string{"skip", "allow"}

// String returns the configuration name of the policy.
func (o Overlap) String() string {
	if int(o) < len(overlapNames) {
		return overlapNames[o]
	}
	return fmt.Sprintf("overlap(%d)", uint8(o))
}

// ParseOverlap maps "skip" (or "") and "allow" onto an Overlap.
func ParseOverlap(s string) (Overlap, error) {
	switch s {
	case "", "skip":
		return OverlapSkip, nil
	case "allow":
		return OverlapAllow, nil
	}
	return 0, fmt.Errorf("%w: overlap %q (want skip or allow)", ErrBadPeriodic, s)
}

// MarshalText implements encoding.TextMarshaler.
func (o Overlap) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (o *Overlap) UnmarshalText(b []byte) error {
	v, err := ParseOverlap(string(b))
	if err != nil {
		return err
	}
	*o = v
	return nil
}

// Periodic is a job submitted on a cron schedule.
type Periodic struct {
	// Name identifies the periodic job (the rules of a queue name).
	Name string
	// Cron is the schedule: five fields (minute hour dom month dow), six
	// with leading seconds, or a descriptor such as "@hourly" or
	// "@every 10s".
	Cron string
	// Timezone is an IANA zone name the schedule is read in; "" is UTC.
	Timezone string
	// Overlap says what a tick does while the previous job still runs.
	Overlap Overlap
	// CatchUp fires every tick missed while no leader could (one by one,
	// in order); without it only the latest missed tick fires.
	CatchUp bool
	// Job is the spec of each job it makes; RunAt must be zero.
	Job Spec
}

// Equal reports whether two definitions are the same (compared in their
// canonical encoding).
func (p *Periodic) Equal(o *Periodic) bool {
	return string(appendPeriodic(nil, p)) == string(appendPeriodic(nil, o))
}

// cronParser accepts an optional seconds field and descriptors.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a cron expression read in the named timezone ("" is
// UTC). The schedule never depends on the node's local zone.
func ParseSchedule(spec, timezone string) (cron.Schedule, error) {
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, fmt.Errorf("%w: cron %q: set the timezone field instead of a TZ= prefix", ErrBadPeriodic, spec)
	}
	loc := time.UTC
	if timezone != "" {
		l, err := time.LoadLocation(timezone)
		if err != nil {
			return nil, fmt.Errorf("%w: timezone %q: %w", ErrBadPeriodic, timezone, err)
		}
		loc = l
	}
	s, err := cronParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: cron %q: %w", ErrBadPeriodic, spec, err)
	}
	if ss, ok := s.(*cron.SpecSchedule); ok {
		ss.Location = loc
	}
	return s, nil
}

// ValidatePeriodic checks the rules the FSM applies to a definition; the
// error wraps ErrBadPeriodic or ErrBadSpec.
func ValidatePeriodic(p *Periodic) error {
	if !ValidQueueName(p.Name) {
		return badName(ErrBadPeriodic, "name", p.Name)
	}
	if p.Overlap > OverlapAllow {
		return fmt.Errorf("%w: unknown overlap %d", ErrBadPeriodic, p.Overlap)
	}
	if !p.Job.RunAt.IsZero() {
		return fmt.Errorf("%w: a periodic job cannot set run_at", ErrBadPeriodic)
	}
	if len(p.Job.DependsOn) > 0 {
		return fmt.Errorf("%w: a periodic job cannot set depends_on", ErrBadPeriodic)
	}
	if err := ValidateSpec(&p.Job); err != nil {
		return err
	}
	_, err := ParseSchedule(p.Cron, p.Timezone)
	return err
}

// periodicState is one periodic job in the FSM. Values are replaced, never
// modified, once published.
type periodicState struct {
	cfg   Periodic
	sched cron.Schedule
	// lastTick is the last scheduled tick fired (unix nanos); at creation
	// it is the creation time, so no tick from before fires.
	lastTick int64
	// lastJob is the job the last firing (scheduled or manual) made.
	lastJob string
	created int64
	// fired and skipped count the ticks that made a job and the ticks
	// skipped by the overlap policy.
	fired, skipped uint64
}

// next returns the first tick strictly after the unix time after (0 when
// the schedule has none within its search horizon).
func (p *periodicState) next(after int64) int64 {
	n := p.sched.Next(fromNanos(after))
	if n.IsZero() {
		return 0
	}
	return n.UnixNano()
}

// due returns the tick to fire at now: the tick after lastTick with
// catch-up, otherwise the latest tick <= now. ok is false when none is due.
func (p *periodicState) due(now int64) (tick int64, ok bool) {
	t := p.next(p.lastTick)
	if t == 0 || t > now {
		return 0, false
	}
	if p.cfg.CatchUp {
		return t, true
	}
	// A dense schedule idle for long: jump close to now first.
	if now-t > int64(time.Hour) {
		if u := p.next(now - int64(time.Hour)); u != 0 && u <= now {
			t = u
		}
	}
	for i := 0; i < maxTickSteps; i++ {
		n := p.next(t)
		if n == 0 || n > now {
			break
		}
		t = n
	}
	return t, true
}

// SetPeriodic creates or replaces a periodic job. A new one fires its
// first tick after the entry's time; a replaced one keeps its last tick, so
// re-applying a definition never fires a tick twice.
type SetPeriodic struct {
	Periodic Periodic
}

// Kind implements Command.
func (*SetPeriodic) Kind() Kind { return KindSetPeriodic }

// DeletePeriodic removes a periodic job; the jobs it made stay.
type DeletePeriodic struct {
	Name string
}

// Kind implements Command.
func (*DeletePeriodic) Kind() Kind { return KindDeletePeriodic }

// FirePeriodic fires a periodic job: it makes job ID from the definition's
// spec (Result.Submitted holds it, Result.Count is 1; 0 when the overlap
// policy skipped the tick).
//
// A scheduled fire (Manual false) names its Tick. The FSM accepts it only if
// Tick is after the last tick fired, not after the entry's time, and a
// tick of the schedule (with catch-up: exactly the next one), and then
// records it as the last tick fired. A second fire of the same tick, from
// this leader or the next, is ErrAlreadyFired and changes nothing: every
// tick fires at most once.
//
// A manual fire (run-now) has no Tick, ignores the overlap policy and
// leaves the last tick alone.
type FirePeriodic struct {
	Name   string
	Tick   time.Time
	ID     string
	Manual bool
}

// Kind implements Command.
func (*FirePeriodic) Kind() Kind { return KindFirePeriodic }

func (st *state) setPeriodic(c *SetPeriodic) Result {
	p := c.Periodic
	if err := ValidatePeriodic(&p); err != nil {
		return Result{Err: err}
	}
	sched, _ := ParseSchedule(p.Cron, p.Timezone)
	p.Job.Queue = cmp.Or(p.Job.Queue, DefaultQueue)
	ps := &periodicState{cfg: p, sched: sched, lastTick: st.now, created: st.now}
	if old, ok := st.periodics[p.Name]; ok {
		ps.lastTick, ps.lastJob, ps.created = old.lastTick, old.lastJob, old.created
		ps.fired, ps.skipped = old.fired, old.skipped
	}
	if st.periodics == nil {
		st.periodics = map[string]*periodicState{}
	}
	st.periodics[p.Name] = ps
	return Result{}
}

func (st *state) deletePeriodic(c *DeletePeriodic) Result {
	if _, ok := st.periodics[c.Name]; !ok {
		return Result{Err: fmt.Errorf("%w: %q", ErrPeriodicNotFound, c.Name)}
	}
	delete(st.periodics, c.Name)
	return Result{}
}

func (st *state) firePeriodic(c *FirePeriodic) Result {
	p, ok := st.periodics[c.Name]
	if !ok {
		return Result{Err: fmt.Errorf("%w: %q", ErrPeriodicNotFound, c.Name)}
	}
	np := *p
	if c.Manual {
		if !c.Tick.IsZero() {
			return Result{Err: fmt.Errorf("%w: a manual fire has no tick", ErrBadTick)}
		}
	} else {
		tick := nanos(c.Tick)
		switch {
		case tick <= p.lastTick:
			return Result{Err: fmt.Errorf("%w: %s fired up to %s, asked for %s", ErrAlreadyFired, c.Name, fromNanos(p.lastTick).Format(time.RFC3339Nano), c.Tick.UTC().Format(time.RFC3339Nano))}
		case tick > st.now:
			return Result{Err: fmt.Errorf("%w: %s is in the future", ErrBadTick, c.Tick.UTC().Format(time.RFC3339Nano))}
		}
		if p.cfg.CatchUp {
			if want := p.next(p.lastTick); tick != want {
				return Result{Err: fmt.Errorf("%w: %s catches up, the next tick is %s", ErrBadTick, c.Name, fromNanos(want).Format(time.RFC3339Nano))}
			}
		} else if got, ok := p.due(tick); !ok || got != tick {
			return Result{Err: fmt.Errorf("%w: %s is not on the schedule %q", ErrBadTick, c.Tick.UTC().Format(time.RFC3339Nano), p.cfg.Cron)}
		}
		np.lastTick = tick
		if p.cfg.Overlap == OverlapSkip && p.lastJob != "" {
			if j, ok := st.jobs[p.lastJob]; ok && !j.State.Terminal() {
				np.skipped++
				st.periodics[c.Name] = &np
				return Result{}
			}
		}
	}
	spec := p.cfg.Job
	sub := st.submitOne(c.ID, &spec)
	if sub.Err != nil {
		return Result{Err: sub.Err}
	}
	np.lastJob = sub.ID
	np.fired++
	st.periodics[c.Name] = &np
	return Result{Submitted: []Submitted{sub}, Count: 1}
}

// PeriodicInfo describes a periodic job for listing and for the leader
// that fires it.
type PeriodicInfo struct {
	Periodic
	// LastTick is the last scheduled tick fired (the creation time before
	// the first).
	LastTick time.Time
	// LastJob is the job of the last firing ("" before the first).
	LastJob string
	// Fired counts the firings that made a job; Skipped the ticks the
	// overlap policy skipped.
	Fired, Skipped uint64
	CreatedAt      time.Time

	st *periodicState
}

// Due returns the tick the leader should fire at now, if any (the same
// rule the FSM checks).
func (pi PeriodicInfo) Due(now time.Time) (time.Time, bool) {
	t, ok := pi.st.due(nanos(now))
	return fromNanos(t), ok
}

// Next returns the next tick to fire after now: a tick already due when
// one is, else the first tick after now. Zero when the schedule has none.
func (pi PeriodicInfo) Next(now time.Time) time.Time {
	if t, ok := pi.Due(now); ok {
		return t
	}
	return fromNanos(pi.st.next(max(pi.st.lastTick, nanos(now))))
}

func (p *periodicState) info() PeriodicInfo {
	return PeriodicInfo{
		Periodic:  p.cfg,
		LastTick:  fromNanos(p.lastTick),
		LastJob:   p.lastJob,
		Fired:     p.fired,
		Skipped:   p.skipped,
		CreatedAt: fromNanos(p.created),
		st:        p,
	}
}

// Periodics returns every periodic job, sorted by name.
func (s *Store) Periodics() []PeriodicInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]PeriodicInfo, 0, len(s.st.periodics))
	for _, p := range s.st.periodics {
		out = append(out, p.info())
	}
	slices.SortFunc(out, func(a, b PeriodicInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Periodic returns the named periodic job.
func (s *Store) Periodic(name string) (PeriodicInfo, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.st.periodics[name]
	if !ok {
		return PeriodicInfo{}, false
	}
	return p.info(), true
}

// Periodic codec: commands.

func appendPeriodic(b []byte, p *Periodic) []byte {
	b = binenc.AppendString(b, p.Name)
	b = binenc.AppendString(b, p.Cron)
	b = binenc.AppendString(b, p.Timezone)
	b = append(b, byte(p.Overlap))
	b = binenc.AppendBool(b, p.CatchUp)
	return appendSpec(b, &p.Job)
}

func (d *decoder) periodic(p *Periodic) {
	p.Name = d.Str()
	p.Cron = d.Str()
	p.Timezone = d.Str()
	p.Overlap = Overlap(d.Byte())
	p.CatchUp = d.Bool()
	d.spec(&p.Job)
}

// appendPeriodicCommand encodes the periodic commands; ok is false for
// any other command.
func appendPeriodicCommand(b []byte, c Command) (_ []byte, ok bool) {
	switch c := c.(type) {
	case *SetPeriodic:
		if c == nil {
			return b, false
		}
		b = append(b, byte(KindSetPeriodic))
		return appendPeriodic(b, &c.Periodic), true
	case *DeletePeriodic:
		if c == nil {
			return b, false
		}
		b = append(b, byte(KindDeletePeriodic))
		return binenc.AppendString(b, c.Name), true
	case *FirePeriodic:
		if c == nil {
			return b, false
		}
		b = append(b, byte(KindFirePeriodic))
		b = binenc.AppendString(b, c.Name)
		b = binenc.AppendTime(b, c.Tick)
		b = binenc.AppendString(b, c.ID)
		return binenc.AppendBool(b, c.Manual), true
	}
	return b, false
}

// periodicCommand decodes the periodic command of kind k (nil for another
// kind).
func (d *decoder) periodicCommand(k Kind) Command {
	switch k {
	case KindSetPeriodic:
		c := &SetPeriodic{}
		d.periodic(&c.Periodic)
		return c
	case KindDeletePeriodic:
		return &DeletePeriodic{Name: d.Str()}
	case KindFirePeriodic:
		return &FirePeriodic{Name: d.Str(), Tick: d.Time(), ID: d.Str(), Manual: d.Bool()}
	}
	return nil
}

// Periodic snapshot section.

func capturePeriodics(st *state) []byte {
	if len(st.periodics) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(st.periodics))
	b := binary.AppendUvarint(nil, uint64(len(names)))
	for _, name := range names {
		p := st.periodics[name]
		b = appendPeriodic(b, &p.cfg)
		b = binary.AppendVarint(b, p.lastTick)
		b = binenc.AppendString(b, p.lastJob)
		b = binary.AppendVarint(b, p.created)
		b = binary.AppendUvarint(b, p.fired)
		b = binary.AppendUvarint(b, p.skipped)
	}
	return b
}

func restorePeriodics(st *state, d *decoder) {
	n := d.Count(8)
	for i := 0; i < n && d.Err() == nil; i++ {
		p := &periodicState{}
		d.periodic(&p.cfg)
		p.lastTick = d.Varint()
		p.lastJob = d.Str()
		p.created = d.Varint()
		p.fired = d.Uvarint()
		p.skipped = d.Uvarint()
		if d.Err() != nil {
			return
		}
		sched, err := ParseSchedule(p.cfg.Cron, p.cfg.Timezone)
		if err != nil {
			d.Fail(fmt.Sprintf("periodic %q: %v", p.cfg.Name, err))
			return
		}
		p.sched = sched
		if _, dup := st.periodics[p.cfg.Name]; dup {
			d.Fail(fmt.Sprintf("duplicate periodic %q", p.cfg.Name))
			return
		}
		if st.periodics == nil {
			st.periodics = map[string]*periodicState{}
		}
		st.periodics[p.cfg.Name] = p
	}
}
