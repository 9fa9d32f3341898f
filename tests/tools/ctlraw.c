/*
 * ctlraw: a deliberately naive control client for tests.
 *   ctlraw [-w MS] [-k] SOCKET < bytes
 * Connects, sends stdin verbatim (no framing added), half-closes unless -k,
 * then prints whatever the daemon sends until it closes or MS milliseconds
 * (default 5000) pass with nothing more.  With -k it keeps the connection
 * open without half-closing, to play a slow client.  Exit 0 if the
 * connection worked, 1 otherwise; the output is the evidence.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int wait_ms = 5000, opt;
	int keep = 0;
	char buf[65536];

	while ((opt = getopt(argc, argv, "w:k")) != -1) {
		if (opt == 'w')
			wait_ms = atoi(optarg);
		else if (opt == 'k')
			keep = 1;
		else
			return 2;
	}
	if (optind != argc - 1)
		return 2;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[optind]);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("ctlraw: connect");
		return 1;
	}
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
		size_t off = 0;
		while (off < n) {
			ssize_t w = send(fd, buf + off, n - off, MSG_NOSIGNAL);
			if (w <= 0) {
				/* The daemon may close on us (oversized line): keep reading. */
				fprintf(stderr, "ctlraw: send stopped: %s\n", strerror(errno));
				goto drain;
			}
			off += (size_t)w;
		}
	}
	if (!keep)
		shutdown(fd, SHUT_WR);
drain:
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, wait_ms) <= 0)
			break;
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r <= 0) {
			/* Closing with our unread bytes queued makes the kernel send RST. */
			if (r == 0 || errno == ECONNRESET)
				printf(r == 0 ? "[closed]\n" : "[closed: reset]\n");
			break;
		}
		fwrite(buf, 1, (size_t)r, stdout);
		fflush(stdout);
	}
	close(fd);
	return 0;
}
