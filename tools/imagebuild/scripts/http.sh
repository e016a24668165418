# HTTP helpers for the stand-ins' nc handlers (sourced).
CR=$(printf '\r')

# http_read: reads the request line into $method and $path, skips headers.
http_read() {
	read -r method path proto
	while read -r line; do
		case "$line" in "" | "$CR") break ;; esac
	done
}

# http_reply STATUS BODY
http_reply() {
	printf 'HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
		"$1" "${#2}" "$2"
}
