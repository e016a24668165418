package cmdline

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       Config
		wantErr    string
	}{
		{name: "defaults", line: "console=ttyAMA0 cgroup_no_v1=all\n",
			want: Config{FlashLabel: "PODBOOT", Console: "ttyAMA0"}},
		{name: "debug shell and label", line: `console=tty1 console=ttyS0,115200n8 podboot.debug=shell podboot.flash=LABEL=DATA`,
			want: Config{DebugShell: true, FlashLabel: "DATA", Console: "ttyS0"}},
		{name: "quoted", line: `foo="a b" podboot.debug=shell`,
			want: Config{DebugShell: true, FlashLabel: "PODBOOT"}},
		{name: "typos reported, boot goes on", line: "podboot.debug=sh podboot.flash=/dev/vda1",
			want:    Config{FlashLabel: "PODBOOT"},
			wantErr: "podboot.debug=sh: want shell or off; podboot.flash=/dev/vda1: want LABEL=<filesystem label>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.line)
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}
