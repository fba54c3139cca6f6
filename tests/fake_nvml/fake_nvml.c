/*
 * A small stand-in for libnvidia-ml.so, loaded by the real `fleetop agent` through nvml-wrapper.
 * It exports only the functions the agent calls. Values come from the file named by $FAKE_NVML_SPEC:
 *
 *   driver 550.90.07
 *   cuda 12040
 *   abort_after 3            (optional: abort() on the Nth sample, to test an agent dying mid-stream)
 *   gpu index|uuid|name|util|memutil|mem_used_mib|mem_total_mib|temp|memtemp|power_mw|limit_mw|sm_mhz|
 *       throttle_bits|ecc_unc|remap_pending|remap_failure|xid|pcie_gen|pcie_width|slowdown|shutdown|memmax
 *
 * A value of NA makes that query return NVML_ERROR_NOT_SUPPORTED. An xid other than 0 is delivered once
 * through the event set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_GPUS 16
#define NFIELDS 22
#define NA (-1LL)

enum { F_INDEX, F_UUID, F_NAME, F_UTIL, F_MEMUTIL, F_MEMUSED, F_MEMTOTAL, F_TEMP, F_MEMTEMP, F_POWER, F_LIMIT,
       F_SM, F_THROTTLE, F_ECC, F_REMAP_PENDING, F_REMAP_FAILURE, F_XID, F_PCIE_GEN, F_PCIE_WIDTH, F_SLOWDOWN,
       F_SHUTDOWN, F_MEMMAX };

typedef struct {
    char uuid[96];
    char name[96];
    long long v[NFIELDS];
    int xid_delivered;
} gpu_t;

static gpu_t gpus[MAX_GPUS];
static int ngpus;
static char driver[600] = "550.90.07";
static int cuda = 12040;
static int abort_after;
static int samples;
static int initialised;

typedef struct { unsigned int gpu, memory; } util_t;
typedef struct { unsigned int version; unsigned long long total, reserved, free, used; } mem_v2_t;
typedef union { double d; int si; unsigned int ui; unsigned long ul; unsigned long long ull; long long sll; unsigned short us; } value_t;
typedef struct { unsigned int fieldId, scopeId; long long timestamp, latencyUsec; int valueType; int nvmlReturn; value_t value; } field_t;
typedef struct { void *device; unsigned long long eventType, eventData; unsigned int gi, ci; } event_t;

enum { OK = 0, UNINIT = 1, INVALID = 2, NOT_SUPPORTED = 3, TIMEOUT = 10, INSUFFICIENT = 7 };

static long long parse(const char *s) { return strcmp(s, "NA") == 0 ? NA : atoll(s); }

static int load(void) {
    const char *path = getenv("FAKE_NVML_SPEC");
    if (!path) return OK;
    FILE *f = fopen(path, "r");
    if (!f) return 9; /* NVML_ERROR_DRIVER_NOT_LOADED */
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, "driver ", 7) == 0) { snprintf(driver, sizeof driver, "%s", line + 7); continue; }
        if (strncmp(line, "cuda ", 5) == 0) { cuda = atoi(line + 5); continue; }
        if (strncmp(line, "abort_after ", 12) == 0) { abort_after = atoi(line + 12); continue; }
        if (strncmp(line, "gpu ", 4) != 0 || ngpus >= MAX_GPUS) continue;
        gpu_t *g = &gpus[ngpus];
        memset(g, 0, sizeof *g);
        char *save = NULL, *tok = strtok_r(line + 4, "|", &save);
        for (int i = 0; tok && i < NFIELDS; i++, tok = strtok_r(NULL, "|", &save)) {
            if (i == F_UUID) snprintf(g->uuid, sizeof g->uuid, "%s", tok);
            else if (i == F_NAME) snprintf(g->name, sizeof g->name, "%s", tok);
            else g->v[i] = parse(tok);
        }
        ngpus++;
    }
    fclose(f);
    return OK;
}

static gpu_t *dev(void *d) {
    gpu_t *g = (gpu_t *)d;
    return (g >= gpus && g < gpus + ngpus) ? g : NULL;
}

#define VALUE(field, out, type)          \
    do {                                  \
        gpu_t *g = dev(d);                \
        if (!g) return INVALID;           \
        if (g->v[field] == NA)            \
            return NOT_SUPPORTED;         \
        *(out) = (type)g->v[field];       \
        return OK;                        \
    } while (0)

int nvmlInit_v2(void) { if (!initialised) { int r = load(); if (r) return r; initialised = 1; } return OK; }
int nvmlInit(void) { return nvmlInit_v2(); }
int nvmlInitWithFlags(unsigned int flags) { (void)flags; return nvmlInit_v2(); }
int nvmlShutdown(void) { return OK; }
const char *nvmlErrorString(int r) {
    switch (r) { case OK: return "Success"; case NOT_SUPPORTED: return "Not Supported"; case TIMEOUT: return "Timeout";
                 case 9: return "Driver Not Loaded"; default: return "Unknown Error"; }
}
int nvmlSystemGetDriverVersion(char *buf, unsigned int len) { snprintf(buf, len, "%s", driver); return OK; }
int nvmlSystemGetCudaDriverVersion_v2(int *v) { *v = cuda; return OK; }
int nvmlSystemGetCudaDriverVersion(int *v) { *v = cuda; return OK; }
int nvmlDeviceGetCount_v2(unsigned int *n) { *n = ngpus; return OK; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **d) { if ((int)i >= ngpus) return INVALID; *d = &gpus[i]; return OK; }
int nvmlDeviceGetIndex(void *d, unsigned int *i) { gpu_t *g = dev(d); if (!g) return INVALID; *i = (unsigned)(g - gpus); return OK; }
int nvmlDeviceGetUUID(void *d, char *buf, unsigned int len) { gpu_t *g = dev(d); if (!g) return INVALID; snprintf(buf, len, "%s", g->uuid); return OK; }
int nvmlDeviceGetName(void *d, char *buf, unsigned int len) { gpu_t *g = dev(d); if (!g) return INVALID; snprintf(buf, len, "%s", g->name); return OK; }

int nvmlDeviceGetUtilizationRates(void *d, util_t *u) {
    gpu_t *g = dev(d);
    if (!g) return INVALID;
    if (g == &gpus[0]) {
        samples++;
        if (abort_after && samples >= abort_after) abort();
    }
    if (g->v[F_UTIL] == NA) return NOT_SUPPORTED;
    u->gpu = (unsigned)g->v[F_UTIL];
    u->memory = (unsigned)g->v[F_MEMUTIL];
    return OK;
}
int nvmlDeviceGetMemoryInfo_v2(void *d, mem_v2_t *m) {
    gpu_t *g = dev(d);
    if (!g) return INVALID;
    if (g->v[F_MEMTOTAL] == NA) return NOT_SUPPORTED;
    m->total = (unsigned long long)g->v[F_MEMTOTAL] << 20;
    m->used = (unsigned long long)g->v[F_MEMUSED] << 20;
    m->free = m->total - m->used;
    m->reserved = 0;
    return OK;
}
int nvmlDeviceGetTemperature(void *d, int sensor, unsigned int *t) { (void)sensor; VALUE(F_TEMP, t, unsigned int); }
int nvmlDeviceGetTemperatureThreshold(void *d, int kind, unsigned int *t) {
    int field = kind == 0 ? F_SHUTDOWN : kind == 1 ? F_SLOWDOWN : kind == 2 ? F_MEMMAX : -1;
    if (field < 0) return NOT_SUPPORTED;
    VALUE(field, t, unsigned int);
}
int nvmlDeviceGetPowerUsage(void *d, unsigned int *mw) { VALUE(F_POWER, mw, unsigned int); }
int nvmlDeviceGetEnforcedPowerLimit(void *d, unsigned int *mw) { VALUE(F_LIMIT, mw, unsigned int); }
int nvmlDeviceGetClockInfo(void *d, int clock, unsigned int *mhz) { if (clock != 1) return NOT_SUPPORTED; VALUE(F_SM, mhz, unsigned int); }
int nvmlDeviceGetCurrentClocksThrottleReasons(void *d, unsigned long long *bits) { VALUE(F_THROTTLE, bits, unsigned long long); }
int nvmlDeviceGetCurrentClocksEventReasons(void *d, unsigned long long *bits) { VALUE(F_THROTTLE, bits, unsigned long long); }
int nvmlDeviceGetTotalEccErrors(void *d, int type, int counter, unsigned long long *n) {
    if (type != 1 || counter != 0) return NOT_SUPPORTED;
    VALUE(F_ECC, n, unsigned long long);
}
int nvmlDeviceGetCurrPcieLinkGeneration(void *d, unsigned int *v) { VALUE(F_PCIE_GEN, v, unsigned int); }
int nvmlDeviceGetCurrPcieLinkWidth(void *d, unsigned int *v) { VALUE(F_PCIE_WIDTH, v, unsigned int); }

int nvmlDeviceGetFieldValues(void *d, int count, field_t *values) {
    gpu_t *g = dev(d);
    if (!g) return INVALID;
    for (int i = 0; i < count; i++) {
        int field = values[i].fieldId == 82 ? F_MEMTEMP : values[i].fieldId == 144 ? F_REMAP_PENDING
                  : values[i].fieldId == 145 ? F_REMAP_FAILURE : -1;
        if (field < 0 || g->v[field] == NA) { values[i].nvmlReturn = NOT_SUPPORTED; continue; }
        values[i].nvmlReturn = OK;
        values[i].valueType = 1; /* unsigned int */
        values[i].value.ui = (unsigned)g->v[field];
    }
    return OK;
}

static int event_set_token;
int nvmlEventSetCreate(void **set) { *set = &event_set_token; return OK; }
int nvmlEventSetFree(void *set) { (void)set; return OK; }
int nvmlDeviceRegisterEvents(void *d, unsigned long long types, void *set) { (void)types; (void)set; return dev(d) ? OK : INVALID; }
int nvmlEventSetWait_v2(void *set, event_t *data, unsigned int timeout_ms) {
    (void)set;
    for (int i = 0; i < ngpus; i++) {
        if (gpus[i].v[F_XID] > 0 && !gpus[i].xid_delivered) {
            gpus[i].xid_delivered = 1;
            data->device = &gpus[i];
            data->eventType = 8; /* nvmlEventTypeXidCriticalError */
            data->eventData = (unsigned long long)gpus[i].v[F_XID];
            return OK;
        }
    }
    usleep(timeout_ms * 1000);
    return TIMEOUT;
}
