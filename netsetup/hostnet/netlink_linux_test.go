package hostnet

import (
	"errors"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestRetryDump(t *testing.T) {
	other := errors.New("permission denied")
	tests := []struct {
		name        string
		results     []error // what each call returns, the last one repeated
		wantCalls   int
		wantValue   int
		wantErr     error
		wantErrText string
	}{
		{name: "complete at once", results: []error{nil}, wantCalls: 1, wantValue: 1},
		{name: "interrupted twice, then complete", results: []error{netlink.ErrDumpInterrupted, netlink.ErrDumpInterrupted, nil}, wantCalls: 3, wantValue: 3},
		{name: "another error is not retried", results: []error{other}, wantCalls: 1, wantValue: 1, wantErr: other},
		{
			name: "always interrupted gives up naming the dump", results: []error{netlink.ErrDumpInterrupted}, wantCalls: dumpRetries,
			wantErr: netlink.ErrDumpInterrupted, wantErrText: "dump links: interrupted 5 times: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			got, err := retryDump("dump links", func() (int, error) {
				calls++
				return calls, tt.results[min(calls, len(tt.results))-1]
			})
			if calls != tt.wantCalls {
				t.Errorf("dump called %d times, want %d", calls, tt.wantCalls)
			}
			if got != tt.wantValue {
				t.Errorf("value %d, want %d (a partial dump is never returned)", got, tt.wantValue)
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), tt.wantErrText) {
				t.Errorf("error %q, want it to start with %q", err, tt.wantErrText)
			}
		})
	}
}
