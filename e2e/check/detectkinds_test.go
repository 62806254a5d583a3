package check

import "testing"

// TestDetectKinds: a canary named by its findings alone is caught as Detect catches the
// strategy whose known bug has those kinds.
func TestDetectKinds(t *testing.T) {
	null, dup, dirty := nullSubjectRun(t), duplicateRun(t), dirtyRun(t)
	for _, tc := range []struct {
		name  string
		kinds []Kind
		res   Result
		want  Detection
	}{
		{"an empty subject caught", []Kind{KindEmptySubject}, null, Detection{Customers: 2, Caught: 1}},
		{"an empty subject not caught by a duplicate", []Kind{KindEmptySubject}, dup, Detection{Customers: 2}},
		{"a duplicate caught", []Kind{KindDuplicateRows, KindTwoTokens}, dup, Detection{Customers: 2, Caught: 1}},
		{"two tokens caught", []Kind{KindDuplicateRows, KindTwoTokens}, null, Detection{Customers: 2, Caught: 1}},
		{"a dirty error is no duplicate", []Kind{KindDuplicateRows, KindTwoTokens}, dirty, Detection{Customers: 2}},
		{"no kinds catch nothing", nil, null, Detection{Customers: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DetectKinds(tc.res, tc.kinds...); got != tc.want {
				t.Errorf("DetectKinds = %+v, want %+v", got, tc.want)
			}
		})
	}
	got := CountKinds(dup, KindDuplicateRows, KindEmptySubject)
	if got[KindDuplicateRows] != 1 || got[KindEmptySubject] != 0 || len(got) != 2 {
		t.Errorf("CountKinds = %v, want duplicate-rows 1, empty-subject 0", got)
	}
}
