package httpapi

import (
	"slices"
	"strings"
	"testing"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/queue"
)

func TestResolveDeps(t *testing.T) {
	ids := []string{"ID0", "ID1", "ID2"}
	parents, err := resolveDeps([]api.JobRequest{
		{Name: "a"},
		{Name: "b", DependsOn: []string{"a", "01EXISTING"}},
		{DependsOn: []string{"b", "a"}},
	}, ids)
	if err != nil {
		t.Fatal(err)
	}
	if parents[0] != nil || !slices.Equal(parents[1], []string{"ID0", "01EXISTING"}) || !slices.Equal(parents[2], []string{"ID1", "ID0"}) {
		t.Fatalf("parents %v", parents)
	}
	if !hasDeps(parents) || hasDeps(make([][]string, 2)) {
		t.Fatal("hasDeps")
	}
	for _, tc := range []struct {
		reqs []api.JobRequest
		want string
	}{
		{[]api.JobRequest{{Name: "a", DependsOn: []string{"c"}}, {Name: "b", DependsOn: []string{"a"}}, {Name: "c", DependsOn: []string{"b"}}},
			"depends_on has a cycle: a -> c -> b -> a"},
		{[]api.JobRequest{{Name: "a"}, {DependsOn: []string{"a", "jobs1"}}, {Name: "jobs1"}}, ""},
		{[]api.JobRequest{{Name: "a"}, {Name: "a"}}, `jobs[1]: name "a" is already used by jobs[0]`},
		{[]api.JobRequest{{Name: "a b"}, {}}, `jobs[0]: name "a b" must be`},
		{[]api.JobRequest{{DependsOn: []string{""}}}, `depends_on entry "" must be`},
		{[]api.JobRequest{{DependsOn: slices.Repeat([]string{"x"}, queue.MaxParents+1)}}, "over the limit of 100"},
		{[]api.JobRequest{{Name: "self", DependsOn: []string{"self"}}}, "cycle: self -> self"},
	} {
		_, err := resolveDeps(tc.reqs, ids)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.reqs, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || statusOf(err) != 400 {
			t.Errorf("%+v: got %v, want a 400 containing %q", tc.reqs, err, tc.want)
		}
	}
}
