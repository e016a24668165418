package podagent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/podboot/podboot/agent/api"
	"github.com/podboot/podboot/agent/metrics"
	"github.com/podboot/podboot/agent/store"
	"github.com/podboot/podboot/internal/device"
)

// apiServer is the API's side: the kubectl-compatible handler over the
// store, the listeners that serve it and, with HTTPS, the certificate
// keeper that follows the board's addresses.
type apiServer struct {
	listeners []listener
	keeper    *certKeeper // nil without HTTPS
	log       *slog.Logger
}

// newAPIServer builds the handler and opens the listeners; --listen's
// address is taken here, so a bad or taken one is an error at once.
func newAPIServer(cfg Config, dev device.Device, st *store.Store, agentMetrics *metrics.Metrics, streams api.Streams, flash api.Flash, otaEndpoints api.OTA, log *slog.Logger) (*apiServer, error) {
	apiLog := log.With("component", "api")
	power, powerOff := powerControl(cfg.PowerPID, os.Getppid(), killProcess)
	opts := api.Options{
		NodeName:   cfg.NodeName,
		GitVersion: KubernetesVersion,
		Streams:    streams,
		Flash:      flash,
		OTA:        otaEndpoints,
		Log:        apiLog,
	}
	if agentMetrics != nil {
		opts.Metrics = agentMetrics
	}
	if power != nil {
		opts.Power = power
		log.Info("power control on", "pid", cfg.PowerPID)
	} else {
		opts.PowerDisabled = powerOff
		if cfg.PowerPID != 0 {
			log.Warn("power control off", "reason", powerOff)
		}
	}
	handler := api.New(st, &logStreamer{st: st, root: filepath.Join(cfg.StateDir, "pods")}, opts)
	listeners, keeper, err := cfg.listeners(dev.API, handler, apiLog)
	if err != nil {
		return nil, err
	}
	return &apiServer{listeners: listeners, keeper: keeper, log: apiLog}, nil
}

// start serves every listener in g, with the keeper beside them; when ctx
// ends the servers shut down, without waiting long for a stuck client.
func (a *apiServer) start(ctx context.Context, g *errgroup.Group) {
	if a.keeper != nil {
		g.Go(func() error {
			a.keeper.run(ctx)
			return nil
		})
	}
	for _, l := range a.listeners {
		g.Go(func() error {
			l.serve(ctx, a.log)
			return nil
		})
	}
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
		defer cancel()
		for _, l := range a.listeners {
			_ = l.srv.Shutdown(sctx) // a stuck client does not hold up power-off
		}
		return nil
	})
}

// listeners are the API's listeners: --listen's plain HTTP on loopback,
// and device.yaml's with --device-listeners. --listen is opened here so a
// bad or taken address stops the agent at once, as devnode expects.
// The certificate keeper, when HTTPS is on, must run beside them.
func (cfg Config) listeners(dev device.API, handler http.Handler, log *slog.Logger) ([]listener, *certKeeper, error) {
	var out []listener
	if cfg.Listen != "" {
		if err := checkLoopback(cfg.Listen); err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, nil, fmt.Errorf("listen on %q: %w", cfg.Listen, err)
		}
		first := true
		out = append(out, listener{
			name: "http",
			srv:  &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second},
			hint: tcpHint,
			listen: func() (net.Listener, error) {
				if first {
					first = false
					return ln, nil
				}
				return net.Listen("tcp", cfg.Listen)
			},
		})
	}
	if !cfg.DeviceListeners {
		return out, nil, nil
	}
	dl, keeper := deviceListeners(cfg, dev, handler, log)
	return append(out, dl...), keeper, nil
}
