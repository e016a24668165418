package soak

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSpread(t *testing.T) {
	tests := []struct {
		n, k int
		want []int
	}{
		{3, 13, []int{0, 1, 2}},
		{31, 7, []int{0, 5, 10, 15, 20, 25, 30}},
		{14, 13, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, spread(tc.n, tc.k)); diff != "" {
			t.Errorf("spread(%d, %d) (-want +got):\n%s", tc.n, tc.k, diff)
		}
	}
}
