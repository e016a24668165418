package supervise

import (
	"context"
	"os/exec"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBackoff(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name string
		ran  []time.Duration
		want []time.Duration
	}{
		{"doubles to 30s", []time.Duration{0, 0, 0, 0, 0, 0, 0, 0},
			[]time.Duration{1 * s, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s, 30 * s, 30 * s}},
		{"a minute of running resets", []time.Duration{0, 0, 0, 60 * s, 0},
			[]time.Duration{1 * s, 2 * s, 4 * s, 1 * s, 2 * s}},
		{"59s is not enough", []time.Duration{0, 0, 59 * s},
			[]time.Duration{1 * s, 2 * s, 4 * s}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b backoff
			var got []time.Duration
			for _, r := range tc.ran {
				got = append(got, b.next(r))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("delays (-want +got):\n%s", diff)
			}
		})
	}
}

func fakeService(name string) Service {
	return Service{Name: name, Command: func() *exec.Cmd { return nil }, StopTimeout: 5 * time.Second}
}

func TestRestartTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := time.Second
		crash := fakeRun{ran: 0, code: 1}
		f := newFakeSpawner(map[string][]fakeRun{"svc": {
			crash, {ran: 0, code: 0}, crash, crash, crash, crash,
			{ran: 60 * s, code: 2}, // healthy long enough: back to 1s
			{ran: 10 * s, code: noRestartCode},
		}})
		logs, log := newRecorded()
		sup := New(log)
		sup.spawn = f.spawn
		if err := sup.Start(fakeService("svc")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		want := []time.Duration{0, 1 * s, 3 * s, 7 * s, 15 * s, 31 * s, 61 * s, 122 * s}
		if diff := cmp.Diff(want, f.startTimes()["svc"]); diff != "" {
			t.Errorf("start times (-want +got):\n%s", diff)
		}
		if n := len(logs.find("service exited with code 125: not restarting", map[string]string{"service": "svc"})); n != 1 {
			t.Errorf("logged %d 'not restarting', want 1", n)
		}
		if n := len(logs.find("service exited", map[string]string{"service": "svc", "status": "exit status 0"})); n != 1 {
			t.Errorf("logged %d exits with status 0, want 1", n)
		}
		if err := sup.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if diff := cmp.Diff([]string(nil), f.signalLog()); diff != "" {
			t.Errorf("Stop of an exited service sent signals (-want +got):\n%s", diff)
		}
	})
}

func TestStopOrderAndEscalation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSpawner(map[string][]fakeRun{
			"containerd": {{ran: -1}},
			"agent":      {{ran: -1, ignoreTerm: true}},
			"crashy":     {{ran: 0, code: 1}},
		})
		_, log := newRecorded()
		sup := New(log)
		sup.spawn = f.spawn
		for _, name := range []string{"containerd", "agent", "crashy"} {
			if err := sup.Start(fakeService(name)); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		start := time.Now()
		if err := sup.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := []string{
			// crashy waits in its backoff: nothing to signal.
			"agent terminated at 0s", "agent killed at 5s",
			"containerd terminated at 5s", "containerd killed at 5s",
		}
		if diff := cmp.Diff(want, f.signalLog()); diff != "" {
			t.Errorf("signals (-want +got):\n%s", diff)
		}
		if got := time.Since(start); got != 5*time.Second {
			t.Errorf("Stop took %v, want 5s", got)
		}
		time.Sleep(time.Hour)
		if diff := cmp.Diff([]time.Duration{0}, f.startTimes()["crashy"]); diff != "" {
			t.Errorf("crashy restarted after Stop (-want +got):\n%s", diff)
		}
		if err := sup.Start(fakeService("late")); err == nil {
			t.Error("Start after Stop: no error")
		}
	})
}

func TestStopContextCancelKills(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSpawner(map[string][]fakeRun{"agent": {{ran: -1, ignoreTerm: true}}})
		_, log := newRecorded()
		sup := New(log)
		sup.spawn = f.spawn
		if err := sup.Start(fakeService("agent")); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := sup.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		want := []string{"agent terminated at 0s", "agent killed at 1s"}
		if diff := cmp.Diff(want, f.signalLog()); diff != "" {
			t.Errorf("signals (-want +got):\n%s", diff)
		}
	})
}

// A service that keeps crashing is given up after MaxFailures runs in a
// row, and a healthy minute in between resets the count.
func TestGiveUpAfterMaxFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := time.Second
		crash := fakeRun{ran: 0, code: 1}
		f := newFakeSpawner(map[string][]fakeRun{"svc": {
			crash, crash, {ran: 60 * s, code: 1}, crash, crash, crash, crash,
		}})
		_, log := newRecorded()
		sup := New(log)
		sup.spawn = f.spawn
		var gaveUp []string
		svc := fakeService("svc")
		svc.MaxFailures = 3
		svc.OnGiveUp = func(err error) { gaveUp = append(gaveUp, err.Error()) }
		if err := sup.Start(svc); err != nil {
			t.Fatal(err)
		}
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		want := []time.Duration{0, 1 * s, 3 * s, 64 * s, 66 * s}
		if diff := cmp.Diff(want, f.startTimes()["svc"]); diff != "" {
			t.Errorf("start times (-want +got):\n%s", diff)
		}
		wantErr := []string{`service "svc" failed 3 times in a row, last: exited after 0s: exit status 1`}
		if diff := cmp.Diff(wantErr, gaveUp); diff != "" {
			t.Errorf("OnGiveUp calls (-want +got):\n%s", diff)
		}
		if err := sup.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
}
