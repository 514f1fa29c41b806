#define _GNU_SOURCE
#include "CResolver.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// The most addresses handed on: libpq tries them in order, and a name with
// more is not a database node.
enum { maximum_addresses = 8, addresses_size = maximum_addresses * (NI_MAXHOST + 1) };

struct pgsqlchk_lookup {
    // Two owners, the caller and the thread: the last to let go frees it.
    atomic_int owners;
    // Set by the thread, read by the caller once the pipe says it is done.
    atomic_int finished;
    int status;
    int pipe_read;
    int pipe_write;
    char *host;
    char addresses[addresses_size];
};

static void release(pgsqlchk_lookup *lookup) {
    if (atomic_fetch_sub(&lookup->owners, 1) != 1) return;
    close(lookup->pipe_read);
    free(lookup->host);
    free(lookup);
}

// Whether `text` is already one of the comma-separated `list`.
static int lists(const char *list, const char *text) {
    size_t length = strlen(text);
    for (const char *entry = list; *entry != '\0';) {
        const char *end = strchr(entry, ',');
        size_t entry_length = end != NULL ? (size_t)(end - entry) : strlen(entry);
        if (entry_length == length && memcmp(entry, text, length) == 0) return 1;
        if (end == NULL) break;
        entry = end + 1;
    }
    return 0;
}

static void *look_up(void *argument) {
    pgsqlchk_lookup *lookup = argument;
    // What libpq asks for when it resolves a host itself.
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *found = NULL;
    int status = getaddrinfo(lookup->host, NULL, &hints, &found);
    size_t used = 0;
    int count = 0;
    for (struct addrinfo *entry = found; status == 0 && entry != NULL && count < maximum_addresses; entry = entry->ai_next) {
        char text[NI_MAXHOST];
        if (getnameinfo(entry->ai_addr, entry->ai_addrlen, text, sizeof text, NULL, 0, NI_NUMERICHOST) != 0) continue;
        size_t length = strlen(text);
        // libpq separates hostaddr entries with commas; a repeated address is tried once.
        if (lists(lookup->addresses, text)) continue;
        if (used + (used > 0) + length + 1 > sizeof lookup->addresses) break;
        if (used > 0) lookup->addresses[used++] = ',';
        memcpy(lookup->addresses + used, text, length + 1);
        used += length;
        count++;
    }
    if (found != NULL) freeaddrinfo(found);
    lookup->status = status == 0 && count == 0 ? EAI_NONAME : status;
    atomic_store(&lookup->finished, 1);
    // The caller may be gone (abandoned): the pipe then just closes.
    char done = 1;
    ssize_t written;
    do written = write(lookup->pipe_write, &done, 1); while (written < 0 && errno == EINTR);
    close(lookup->pipe_write);
    release(lookup);
    return NULL;
}

pgsqlchk_lookup *pgsqlchk_lookup_start(const char *host) {
    pgsqlchk_lookup *lookup = calloc(1, sizeof *lookup);
    if (lookup == NULL) return NULL;
    lookup->host = strdup(host);
    int descriptors[2];
    if (lookup->host == NULL || pipe2(descriptors, O_CLOEXEC | O_NONBLOCK) != 0) {
        free(lookup->host);
        free(lookup);
        return NULL;
    }
    lookup->pipe_read = descriptors[0];
    lookup->pipe_write = descriptors[1];
    atomic_init(&lookup->owners, 2);
    atomic_init(&lookup->finished, 0);

    // The new thread inherits the mask in force when it is created.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    int error = pthread_create(&thread, &attributes, look_up, lookup);
    pthread_attr_destroy(&attributes);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (error != 0) {
        close(lookup->pipe_read);
        close(lookup->pipe_write);
        free(lookup->host);
        free(lookup);
        errno = error;
        return NULL;
    }
    return lookup;
}

int pgsqlchk_lookup_descriptor(const pgsqlchk_lookup *lookup) { return lookup->pipe_read; }

int pgsqlchk_lookup_result(const pgsqlchk_lookup *lookup, char *addresses, size_t size) {
    if (!atomic_load(&lookup->finished)) return EAI_SYSTEM;
    if (lookup->status != 0) return lookup->status;
    if (size == 0) return EAI_OVERFLOW;
    // Whole addresses only: cut at the last comma that fits.
    size_t length = strlen(lookup->addresses);
    if (length >= size) {
        length = size - 1;
        while (length > 0 && lookup->addresses[length] != ',') length--;
        if (length == 0) return EAI_OVERFLOW;
    }
    memcpy(addresses, lookup->addresses, length);
    addresses[length] = '\0';
    return 0;
}

void pgsqlchk_lookup_abandon(pgsqlchk_lookup *lookup) { release(lookup); }
