package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
)

// servingStatus is grpc.health.v1.HealthCheckResponse.ServingStatus.
type servingStatus uint64

const (
	unknown        servingStatus = 0
	serving        servingStatus = 1
	notServing     servingStatus = 2
	serviceUnknown servingStatus = 3 // Watch only
)

// parseStatus reads a status by its protobuf name.
func parseStatus(name string) (servingStatus, bool) {
	switch name {
	case "UNKNOWN":
		return unknown, true
	case "SERVING":
		return serving, true
	case "NOT_SERVING":
		return notServing, true
	}
	return 0, false
}

// gRPC status codes (google.golang.org/grpc/codes) the service answers.
const (
	codeOK            = 0
	codeCanceled      = 1
	codeNotFound      = 5
	codeInternal      = 13
	codeUnimplemented = 12
)

// maxMessage is grpc-go's default limit on a received message.
const maxMessage = 4 << 20

// healthServer is grpc.health.v1.Health with fixed statuses, answering
// as grpc-go's health server (google.golang.org/grpc/health) does.
type healthServer struct {
	status map[string]servingStatus
	log    *slog.Logger
}

func (h *healthServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/grpc")
	service, method, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if !ok || !strings.HasPrefix(r.URL.Path, "/") {
		trailersOnly(w, codeUnimplemented, fmt.Sprintf("malformed method name: %q", r.URL.Path))
		return
	}
	if service != "grpc.health.v1.Health" {
		trailersOnly(w, codeUnimplemented, "unknown service "+service)
		return
	}
	if method != "Check" && method != "Watch" {
		trailersOnly(w, codeUnimplemented, fmt.Sprintf("unknown method %s for service %s", method, service))
		return
	}
	if enc := r.Header.Get("Grpc-Encoding"); enc != "" && enc != "identity" {
		trailersOnly(w, codeUnimplemented, fmt.Sprintf("grpc: Decompressor is not installed for grpc-encoding %q", enc))
		return
	}
	req, err := readMessage(r.Body)
	if err != nil {
		trailersOnly(w, codeInternal, "grpc: error unmarshalling request: "+err.Error())
		return
	}
	name, err := decodeService(req)
	if err != nil {
		trailersOnly(w, codeInternal, "grpc: error unmarshalling request: "+err.Error())
		return
	}
	st, found := h.status[name]
	h.log.Debug("health check", "method", method, "service", name, "status", st, "found", found, "user-agent", r.UserAgent())
	switch {
	case method == "Check" && !found:
		trailersOnly(w, codeNotFound, "unknown service")
	case method == "Check":
		w.WriteHeader(http.StatusOK)
		w.Write(frame(encodeStatus(st)))
		setStatus(w, http.TrailerPrefix, codeOK, "")
	default: // Watch: the status, then nothing changes until the client goes.
		if !found {
			st = serviceUnknown
		}
		w.WriteHeader(http.StatusOK)
		w.Write(frame(encodeStatus(st)))
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
		setStatus(w, http.TrailerPrefix, codeCanceled, "Stream has ended.")
	}
}

// trailersOnly answers a call that failed before any message: the status
// goes in the headers, which end the stream.
func trailersOnly(w http.ResponseWriter, code int, msg string) {
	setStatus(w, "", code, msg)
	w.WriteHeader(http.StatusOK)
}

func setStatus(w http.ResponseWriter, prefix string, code int, msg string) {
	w.Header().Set(prefix+"Grpc-Status", strconv.Itoa(code))
	if msg != "" {
		w.Header().Set(prefix+"Grpc-Message", encodeMessage(msg))
	}
}

// readMessage reads a unary call's one length-prefixed message.
func readMessage(body io.Reader) ([]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(body, hdr[:]); err != nil {
		return nil, fmt.Errorf("read message header: %w", err)
	}
	if hdr[0] != 0 {
		return nil, errors.New("compressed message without grpc-encoding")
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxMessage {
		return nil, fmt.Errorf("message of %d bytes is larger than %d", n, maxMessage)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(body, msg); err != nil {
		return nil, fmt.Errorf("read message of %d bytes: %w", n, err)
	}
	return msg, nil
}

// frame prefixes msg with gRPC's uncompressed flag and length.
func frame(msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// decodeService reads HealthCheckRequest's field 1 (string service),
// skipping any other field as protobuf does.
func decodeService(b []byte) (string, error) {
	var service string
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return "", errors.New("bad field key")
		}
		b = b[n:]
		field, wire := key>>3, key&7
		switch wire {
		case 0: // varint
			if _, n = binary.Uvarint(b); n <= 0 {
				return "", fmt.Errorf("field %d: bad varint", field)
			}
			b = b[n:]
		case 1: // fixed64
			if len(b) < 8 {
				return "", fmt.Errorf("field %d: short fixed64", field)
			}
			b = b[8:]
		case 2: // length-delimited
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return "", fmt.Errorf("field %d: bad length", field)
			}
			if field == 1 {
				service = string(b[n : n+int(l)])
			}
			b = b[n+int(l):]
		case 5: // fixed32
			if len(b) < 4 {
				return "", fmt.Errorf("field %d: short fixed32", field)
			}
			b = b[4:]
		default:
			return "", fmt.Errorf("field %d: unsupported wire type %d", field, wire)
		}
	}
	return service, nil
}

// encodeStatus is HealthCheckResponse{status}; proto3 leaves out a zero.
func encodeStatus(st servingStatus) []byte {
	if st == unknown {
		return nil
	}
	return binary.AppendUvarint([]byte{1<<3 | 0}, uint64(st))
}

// encodeMessage percent-encodes grpc-message as the gRPC spec asks.
func encodeMessage(msg string) string {
	var sb strings.Builder
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c >= ' ' && c <= '~' && c != '%' {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "%%%02X", c)
		}
	}
	return sb.String()
}
