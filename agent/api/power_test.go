package api

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/store"
)

type fakePower struct {
	calls []string
	err   error
}

func (f *fakePower) PowerOff() error { f.calls = append(f.calls, "poweroff"); return f.err }
func (f *fakePower) Reboot() error   { f.calls = append(f.calls, "reboot"); return f.err }

func TestPower(t *testing.T) {
	type want struct {
		Code   int
		Status metav1.Status
		Calls  []string
	}
	status := func(code int32, st, reason, msg string) metav1.Status {
		return metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status: st, Code: code, Reason: metav1.StatusReason(reason), Message: msg}
	}
	tests := []struct {
		name, method, path string
		power              *fakePower // nil: no power control
		want               want
	}{
		{"poweroff", "POST", "/podboot/v1/poweroff", &fakePower{},
			want{202, status(202, "Success", "", "powering off"), []string{"poweroff"}}},
		{"reboot", "POST", "/podboot/v1/reboot", &fakePower{},
			want{202, status(202, "Success", "", "rebooting"), []string{"reboot"}}},
		{"trailing slash", "POST", "/podboot/v1/reboot/", &fakePower{},
			want{202, status(202, "Success", "", "rebooting"), []string{"reboot"}}},
		{"GET poweroff", "GET", "/podboot/v1/poweroff", &fakePower{},
			want{405, status(405, "Failure", "MethodNotAllowed", "GET on /podboot/v1/poweroff is not supported: use POST"), nil}},
		{"PUT reboot", "PUT", "/podboot/v1/reboot", &fakePower{},
			want{405, status(405, "Failure", "MethodNotAllowed", "PUT on /podboot/v1/reboot is not supported: use POST"), nil}},
		{"no power control", "POST", "/podboot/v1/poweroff", nil,
			want{501, status(501, "Failure", "", "poweroff is not available: power control is off (--power-pid 0)"), nil}},
		{"signal fails", "POST", "/podboot/v1/reboot", &fakePower{err: errors.New("signal pid 1: operation not permitted")},
			want{500, status(500, "Failure", "InternalError", "Internal error occurred: reboot: signal pid 1: operation not permitted"), []string{"reboot"}}},
		{"unknown podboot path", "POST", "/podboot/v1/halt", &fakePower{},
			want{404, status(404, "Failure", "NotFound", "the server could not find the requested resource"), nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{PowerDisabled: "power control is off (--power-pid 0)"}
			if tt.power != nil {
				opts.Power = tt.power
			}
			s := newServer(store.New(func() time.Time { return t0 }), fakeLogs{}, opts)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			got := want{Code: rec.Code, Status: decode[metav1.Status](t, rec.Body.Bytes())}
			got.Status.Details = nil
			if tt.power != nil {
				got.Calls = tt.power.calls
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s %s (-want +got):\n%s", tt.method, tt.path, diff)
			}
		})
	}
}
