/* The bench's light node: replays a captured agent stream at 1 Hz instead of running the agent, so that a
 * thousand nodes on the benchmark's own machine cost it little and the jump host's CPU is what is measured.
 *
 *   replay COMPACT WHOLE
 *
 * COMPACT and WHOLE are captures of the real agent's stdout (a hello line, then sample lines): COMPACT with
 * $FLEETOP_COMPACT set, WHOLE without, as an older jump host asks. This program picks the one the jump host
 * asks for the same way (the variable on its command line), prints the hello, then one sample line a second,
 * cycling through the capture, each line's leading time ({"t":N or {"d":N) replaced by the time now.
 * SIGUSR1 (how the jump host's request for a whole sample reaches the agent, `ending_with_session`) makes the
 * next line the capture's first sample, at once. It ends when its stdout is closed. Bench only: not part of
 * fleetop. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINES 256

static volatile sig_atomic_t asked;
static char *lines[MAX_LINES];
static size_t lengths[MAX_LINES];

static int load(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    perror(path);
    exit(2);
  }
  int n = 0;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while (n < MAX_LINES && (len = getline(&line, &cap, f)) > 0) {
    lines[n] = line;
    lengths[n] = (size_t)len;
    n++;
    line = NULL;
    cap = 0;
  }
  fclose(f);
  if (n < 2) {
    fprintf(stderr, "%s: a hello and at least one sample line needed\n", path);
    exit(2);
  }
  return n;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put(const char *text, size_t len) {
  while (len > 0) {
    ssize_t w = write(1, text, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      exit(0);
    text += w;
    len -= (size_t)w;
  }
}

/* Prints `line` with the number after its first colon replaced by the time now. */
static void stamped(const char *line, size_t len) {
  const char *colon = memchr(line, ':', len);
  if (!colon) {
    put(line, len);
    return;
  }
  const char *rest = colon + 1;
  while (rest < line + len && *rest >= '0' && *rest <= '9')
    rest++;
  char out[65536];
  int head = snprintf(out, sizeof out, "%.*s%lld", (int)(colon + 1 - line), line, now_ms());
  size_t tail = (size_t)(line + len - rest);
  if (head < 0 || (size_t)head + tail > sizeof out) {
    put(line, len);
    return;
  }
  memcpy(out + head, rest, tail);
  put(out, (size_t)head + tail);
}

static void ask(int sig) {
  (void)sig;
  asked = 1;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: replay COMPACT WHOLE\n");
    return 2;
  }
  const char *compact = getenv("FLEETOP_COMPACT");
  int n = load(compact && *compact ? argv[1] : argv[2]);
  struct sigaction on_usr1 = {.sa_handler = ask};
  sigemptyset(&on_usr1.sa_mask);
  sigaction(SIGUSR1, &on_usr1, NULL);
  put(lines[0], lengths[0]);
  int next = 1;
  for (;;) {
    long long started = now_ms();
    stamped(lines[next], lengths[next]);
    next = next + 1 < n ? next + 1 : 1;
    for (;;) {
      if (asked) {
        asked = 0;
        next = 1;
        break;
      }
      long long left = started + 1000 - now_ms();
      if (left <= 0)
        break;
      struct timespec pause = {.tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000};
      nanosleep(&pause, NULL); /* a signal ends it early */
    }
  }
}
