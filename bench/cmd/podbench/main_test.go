package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCounts(t *testing.T) {
	tests := []struct {
		list    string
		want    []int
		wantErr bool
	}{
		{"0,10,50", []int{0, 10, 50}, false},
		{" 0, 10 ,", []int{0, 10}, false},
		{"", nil, false},
		{"51", nil, true},
		{"-1", nil, true},
		{"ten", nil, true},
	}
	for _, tt := range tests {
		got, err := parseCounts(tt.list, 50)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseCounts(%q) error = %v, want error %v", tt.list, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("parseCounts(%q) (-want +got):\n%s", tt.list, diff)
		}
	}
}
