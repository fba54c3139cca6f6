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
 * through the event set. Per-GPU trouble, one line each, after the GPU's own line:
 *
 *   lost INDEX N           every query of that GPU returns GPU_IS_LOST after N samples
 *   reset INDEX            every query returns RESET_REQUIRED
 *   nohandle INDEX CODE    nvmlDeviceGetHandleByIndex fails with CODE (15: GPU is lost)
 *   no_ecc_events INDEX    the GPU supports XID events but not double-bit-ECC events
 *   memtemp_double         memory temperature (field 82) comes typed as double, as r545 drivers send it
 *   tlimit INDEX SHUTDOWN SLOWDOWN MEMMAX GPUMAX MARGIN   T.Limit fields 193-196 (signed int) and margin
 *   pci INDEX BUS          PCI bus number (default: index + 1)
 *   mig INDEX              MIG mode enabled
 *   remap_unc INDEX N      remapped rows after uncorrectable errors (field 143)
 *   nvlink INDEX LINKS     the GPU has LINKS NVLinks, all active (without this line: no NVLink, NOT_SUPPORTED)
 *   nvlink_down INDEX LINK N           that link reports inactive once the GPU was sampled N times (0: always)
 *   nvlink_errors INDEX LINK R C F D STEP   its replay, recovery, CRC flit and CRC data counters, each
 *                                          rising by STEP per sample
 *   proc INDEX PID MIB KIND  a process on that GPU (KIND c: compute, g: graphics; MIB -1: unavailable); at most 8
 *   proc_error INDEX CODE    both process lists fail with CODE (3: not supported)
 *   recovery INDEX VALUE     field 230 (NVML_FI_DEV_GET_GPU_RECOVERY_ACTION) reads VALUE and the GPU supports the
 *                            recovery-action event (0x8000); without it, NOT_SUPPORTED as on drivers before R565
 *   recovery_change INDEX VALUE N   once the event set was waited on N times, field 230 reads VALUE and one
 *                                   recovery-action event is delivered (needs a `recovery` line)
 *
 * Board values (each NOT_SUPPORTED without its line; see the board block at the end):
 *   pcie_max INDEX GEN WIDTH        nvmlDeviceGetMaxPcieLinkGeneration / Width
 *   pcie_replay INDEX START STEP    nvmlDeviceGetPcieReplayCounter: START + STEP per sample
 *   fabric INDEX STATE STATUS MASK  nvmlDeviceGetGpuFabricInfoV (v2 or v3) state, status and health mask
 *   sram INDEX FLAG                 nvmlDeviceGetSramEccErrorStatus bThresholdExceeded
 *   unrepairable INDEX FLAG         nvmlDeviceGetUnrepairableMemoryFlag
 *   remap_hist INDEX MAX HIGH PARTIAL LOW NONE   nvmlDeviceGetRowRemapperHistogram
 *   violation INDEX POWER_MS THERMAL_MS   nvmlDeviceGetViolationStatus: power and thermal violation time rising
 *                                         by that many ms per sample
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
    int lost_after;      /* -1: never */
    int nsamples;
    int reset;
    int nohandle;
    int no_ecc_events;
    int has_tlimit;
    int tlimit[4];
    int margin;
    int bus;
    int mig;
    long long remap_unc;
    int nvlinks;
    int link_down_after[18];           /* samples + 1 before the link goes down; 0: never */
    unsigned long long link_errors[18][4];
    unsigned long long link_step[18];
    int nprocs;
    unsigned int proc_pid[8];
    long long proc_mib[8];
    char proc_kind[8];
    int proc_error;
    long long recovery;                /* NA: field 230 not supported */
    long long recovery_next;
    int recovery_change_after;         /* event-set waits before the change; 0: no change */
    int recovery_event_due;
    int recovery_registered;
} gpu_t;

static gpu_t gpus[MAX_GPUS];
static int ngpus;
static char driver[600] = "550.90.07";
static int cuda = 12040;
static int abort_after;
static int samples;
static int initialised;
static int memtemp_double;
static int event_waits;

typedef struct { unsigned int gpu, memory; } util_t;
typedef struct { unsigned int version; unsigned long long total, reserved, free, used; } mem_v2_t;
typedef union { double d; int si; unsigned int ui; unsigned long ul; unsigned long long ull; long long sll; unsigned short us; } value_t;
typedef struct { unsigned int fieldId, scopeId; long long timestamp, latencyUsec; int valueType; int nvmlReturn; value_t value; } field_t;
typedef struct { void *device; unsigned long long eventType, eventData; unsigned int gi, ci; } event_t;

enum { OK = 0, UNINIT = 1, INVALID = 2, NOT_SUPPORTED = 3, TIMEOUT = 10, INSUFFICIENT = 7, GPU_IS_LOST = 15,
       RESET_REQUIRED = 16, UNKNOWN = 999 };

static int load_board(const char *line);

static long long parse(const char *s) { return strcmp(s, "NA") == 0 ? NA : atoll(s); }

static int load(void) {
    const char *path = getenv("FAKE_NVML_SPEC");
    char by_node[1024];
    /* An agent started without the test fleet's wrapper (after `fleetop deploy`) finds its node's spec by the
       address sshd answered on: SSH_CONNECTION is "client port server port". */
    const char *dir = getenv("FAKE_NVML_SPEC_DIR"), *conn = getenv("SSH_CONNECTION");
    if (!path && dir && conn) {
        char client[64], server[64];
        if (sscanf(conn, "%63s %*s %63s", client, server) == 2) {
            snprintf(by_node, sizeof by_node, "%s/%s.spec", dir, server);
            path = by_node;
        }
    }
    if (!path) return OK;
    FILE *f = fopen(path, "r");
    if (!f) return 9; /* NVML_ERROR_DRIVER_NOT_LOADED */
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, "driver ", 7) == 0) { snprintf(driver, sizeof driver, "%s", line + 7); continue; }
        if (strncmp(line, "cuda ", 5) == 0) { cuda = atoi(line + 5); continue; }
        if (strncmp(line, "abort_after ", 12) == 0) { abort_after = atoi(line + 12); continue; }
        if (strcmp(line, "memtemp_double") == 0) { memtemp_double = 1; continue; }
        int i, a, b, c, d, e;
        if (sscanf(line, "lost %d %d", &i, &a) == 2 && i >= 0 && i < ngpus) { gpus[i].lost_after = a; continue; }
        if (sscanf(line, "reset %d", &i) == 1 && i >= 0 && i < ngpus) { gpus[i].reset = 1; continue; }
        if (sscanf(line, "nohandle %d %d", &i, &a) == 2 && i >= 0 && i < ngpus) { gpus[i].nohandle = a; continue; }
        if (sscanf(line, "no_ecc_events %d", &i) == 1 && i >= 0 && i < ngpus) { gpus[i].no_ecc_events = 1; continue; }
        if (sscanf(line, "pci %d %x", &i, &a) == 2 && i >= 0 && i < ngpus) { gpus[i].bus = a; continue; }
        if (sscanf(line, "mig %d", &i) == 1 && i >= 0 && i < ngpus) { gpus[i].mig = 1; continue; }
        if (sscanf(line, "remap_unc %d %d", &i, &a) == 2 && i >= 0 && i < ngpus) { gpus[i].remap_unc = a; continue; }
        if (sscanf(line, "nvlink_down %d %d %d", &i, &a, &b) == 3 && i >= 0 && i < ngpus && a >= 0 && a < 18) {
            gpus[i].link_down_after[a] = b + 1; continue;
        }
        char kind;
        if (sscanf(line, "proc %d %d %d %c", &i, &a, &b, &kind) == 4 && i >= 0 && i < ngpus && gpus[i].nprocs < 8) {
            gpu_t *t = &gpus[i];
            t->proc_pid[t->nprocs] = (unsigned)a; t->proc_mib[t->nprocs] = b; t->proc_kind[t->nprocs] = kind;
            t->nprocs++;
            continue;
        }
        if (sscanf(line, "proc_error %d %d", &i, &a) == 2 && i >= 0 && i < ngpus) { gpus[i].proc_error = a; continue; }
        if (sscanf(line, "recovery_change %d %d %d", &i, &a, &b) == 3 && i >= 0 && i < ngpus && b > 0) {
            gpus[i].recovery_next = a; gpus[i].recovery_change_after = b; continue;
        }
        if (sscanf(line, "recovery %d %d", &i, &a) == 2 && i >= 0 && i < ngpus) { gpus[i].recovery = a; continue; }
        int f;
        if (sscanf(line, "nvlink_errors %d %d %d %d %d %d %d", &i, &a, &b, &c, &d, &e, &f) == 7 && i >= 0 && i < ngpus
            && a >= 0 && a < 18) {
            gpu_t *t = &gpus[i];
            t->link_errors[a][0] = b; t->link_errors[a][1] = c; t->link_errors[a][2] = d; t->link_errors[a][3] = e;
            t->link_step[a] = f;
            continue;
        }
        if (sscanf(line, "nvlink %d %d", &i, &a) == 2 && i >= 0 && i < ngpus && a >= 0 && a <= 18) { gpus[i].nvlinks = a; continue; }
        if (sscanf(line, "tlimit %d %d %d %d %d %d", &i, &a, &b, &c, &d, &e) == 6 && i >= 0 && i < ngpus) {
            gpu_t *t = &gpus[i];
            t->has_tlimit = 1; t->tlimit[0] = a; t->tlimit[1] = b; t->tlimit[2] = c; t->tlimit[3] = d; t->margin = e;
            continue;
        }
        if (load_board(line)) continue;
        if (strncmp(line, "gpu ", 4) != 0 || ngpus >= MAX_GPUS) continue;
        gpu_t *g = &gpus[ngpus];
        memset(g, 0, sizeof *g);
        g->lost_after = -1;
        g->bus = ngpus + 1;
        g->remap_unc = NA;
        g->recovery = NA;
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

/* The error every query of a GPU in trouble returns, or OK. */
static int trouble(gpu_t *g) {
    if (g->lost_after >= 0 && g->nsamples > g->lost_after) return GPU_IS_LOST;
    if (g->reset) return RESET_REQUIRED;
    return OK;
}

#define VALUE(field, out, type)          \
    do {                                  \
        gpu_t *g = dev(d);                \
        if (!g) return INVALID;           \
        if (trouble(g)) return trouble(g); \
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
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **d) {
    if ((int)i >= ngpus) return INVALID;
    if (gpus[i].nohandle) return gpus[i].nohandle;
    *d = &gpus[i];
    return OK;
}
int nvmlDeviceGetIndex(void *d, unsigned int *i) { gpu_t *g = dev(d); if (!g) return INVALID; *i = (unsigned)(g - gpus); return OK; }
int nvmlDeviceGetUUID(void *d, char *buf, unsigned int len) { gpu_t *g = dev(d); if (!g) return INVALID; if (trouble(g)) return trouble(g); snprintf(buf, len, "%s", g->uuid); return OK; }
int nvmlDeviceGetSerial(void *d, char *buf, unsigned int len) {
    gpu_t *g = dev(d);
    if (!g) return INVALID;
    if (trouble(g)) return trouble(g);
    snprintf(buf, len, "1652%s", g->uuid + (strlen(g->uuid) > 4 ? strlen(g->uuid) - 4 : 0));
    return OK;
}
int nvmlDeviceGetVbiosVersion(void *d, char *buf, unsigned int len) {
    gpu_t *g = dev(d);
    if (!g) return INVALID;
    if (trouble(g)) return trouble(g);
    snprintf(buf, len, "96.00.99.00.01");
    return OK;
}
int nvmlDeviceGetName(void *d, char *buf, unsigned int len) { gpu_t *g = dev(d); if (!g) return INVALID; snprintf(buf, len, "%s", g->name); return OK; }

int nvmlDeviceGetUtilizationRates(void *d, util_t *u) {
    gpu_t *g = dev(d);
    if (!g) return INVALID;
    if (g == &gpus[0]) {
        samples++;
        if (abort_after && samples >= abort_after) abort();
    }
    g->nsamples++;
    if (trouble(g)) return trouble(g);
    if (g->v[F_UTIL] == NA) return NOT_SUPPORTED;
    u->gpu = (unsigned)g->v[F_UTIL];
    u->memory = (unsigned)g->v[F_MEMUTIL];
    return OK;
}
int nvmlDeviceGetMemoryInfo_v2(void *d, mem_v2_t *m) {
    gpu_t *g = dev(d);
    if (!g) return INVALID;
    if (trouble(g)) return trouble(g);
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
        unsigned id = values[i].fieldId;
        if (trouble(g)) { values[i].nvmlReturn = trouble(g); continue; }
        if (id >= 193 && id <= 196) {
            if (!g->has_tlimit) { values[i].nvmlReturn = NOT_SUPPORTED; continue; }
            values[i].nvmlReturn = OK;
            values[i].valueType = 5; /* signed int */
            values[i].value.si = g->tlimit[id - 193];
            continue;
        }
        if (id == 230) {
            if (g->recovery == NA) { values[i].nvmlReturn = NOT_SUPPORTED; continue; }
            values[i].nvmlReturn = OK;
            values[i].valueType = 1; /* unsigned int */
            values[i].value.ui = (unsigned)g->recovery;
            continue;
        }
        if (id == 143) {
            if (g->remap_unc == NA) { values[i].nvmlReturn = NOT_SUPPORTED; continue; }
            values[i].nvmlReturn = OK;
            values[i].valueType = 1;
            values[i].value.ui = (unsigned)g->remap_unc;
            continue;
        }
        int field = id == 82 ? F_MEMTEMP : id == 144 ? F_REMAP_PENDING : id == 145 ? F_REMAP_FAILURE : -1;
        if (field < 0 || g->v[field] == NA) { values[i].nvmlReturn = NOT_SUPPORTED; continue; }
        values[i].nvmlReturn = OK;
        if (id == 82 && memtemp_double) {
            values[i].valueType = 0; /* double */
            values[i].value.d = (double)g->v[field];
        } else {
            values[i].valueType = 1; /* unsigned int */
            values[i].value.ui = (unsigned)g->v[field];
        }
    }
    return OK;
}

typedef struct { unsigned int version; int margin; } margin_t;
int nvmlDeviceGetMarginTemperature(void *d, margin_t *m) {
    gpu_t *g = dev(d);
    if (!g) return INVALID;
    if (trouble(g)) return trouble(g);
    if (!g->has_tlimit) return NOT_SUPPORTED;
    m->margin = g->margin;
    return OK;
}

typedef struct { char legacy[16]; unsigned domain, bus, device, pciDeviceId, pciSubSystemId; char busId[32]; } pci_t;
int nvmlDeviceGetPciInfo_v3(void *d, pci_t *p) {
    gpu_t *g = dev(d);
    if (!g) return INVALID;
    memset(p, 0, sizeof *p);
    p->bus = (unsigned)g->bus;
    p->pciDeviceId = 0x233010de;
    snprintf(p->legacy, sizeof p->legacy, "0000:%02X:00.0", g->bus);
    snprintf(p->busId, sizeof p->busId, "00000000:%02X:00.0", g->bus);
    return OK;
}

/* NVML_NVLINK_MAX_LINKS links are asked about; beyond the GPU's count, or without NVLink, NOT_SUPPORTED. */
int nvmlDeviceGetNvLinkState(void *d, unsigned int link, int *active) {
    gpu_t *g = dev(d);
    if (!g) return INVALID;
    if (trouble(g)) return trouble(g);
    if (link >= 18) return INVALID;
    if ((int)link >= g->nvlinks) return NOT_SUPPORTED;
    int after = g->link_down_after[link];
    *active = !(after > 0 && g->nsamples >= after - 1);
    return OK;
}

int nvmlDeviceGetNvLinkErrorCounter(void *d, unsigned int link, int counter, unsigned long long *value) {
    gpu_t *g = dev(d);
    if (!g) return INVALID;
    if (trouble(g)) return trouble(g);
    if ((int)link >= g->nvlinks || counter < 0 || counter > 3) return NOT_SUPPORTED;
    *value = g->link_errors[link][counter] + g->link_step[link] * (unsigned long long)g->nsamples;
    return OK;
}

int nvmlDeviceGetMigMode(void *d, unsigned *current, unsigned *pending) {
    gpu_t *g = dev(d);
    if (!g) return INVALID;
    if (trouble(g)) return trouble(g);
    *current = (unsigned)g->mig;
    *pending = (unsigned)g->mig;
    return OK;
}

int nvmlDeviceGetSupportedEventTypes(void *d, unsigned long long *types) {
    gpu_t *g = dev(d);
    if (!g) return INVALID;
    *types = g->no_ecc_events ? 0x8ULL : 0xAULL; /* XID critical (0x8), double-bit ECC (0x2) */
    if (g->recovery != NA) *types |= 0x8000ULL;  /* nvmlEventTypeGpuRecoveryAction */
    return OK;
}

static int event_set_token;
int nvmlEventSetCreate(void **set) { *set = &event_set_token; return OK; }
int nvmlEventSetFree(void *set) { (void)set; return OK; }
int nvmlDeviceRegisterEvents(void *d, unsigned long long types, void *set) {
    (void)set;
    gpu_t *g = dev(d);
    if (!g) return INVALID;
    if (g->no_ecc_events && (types & 0x2ULL)) return NOT_SUPPORTED;
    if (types & 0x8000ULL) {
        if (g->recovery == NA) return NOT_SUPPORTED;
        g->recovery_registered = 1;
    }
    return OK;
}
int nvmlEventSetWait_v2(void *set, event_t *data, unsigned int timeout_ms) {
    (void)set;
    event_waits++;
    for (int i = 0; i < ngpus; i++) {
        gpu_t *g = &gpus[i];
        if (g->recovery_change_after && event_waits >= g->recovery_change_after) {
            g->recovery_change_after = 0;
            g->recovery = g->recovery_next;
            g->recovery_event_due = 1;
        }
        if (g->recovery_event_due && g->recovery_registered) {
            g->recovery_event_due = 0;
            data->device = g;
            data->eventType = 0x8000ULL; /* nvmlEventTypeGpuRecoveryAction */
            data->eventData = (unsigned long long)g->recovery;
            return OK;
        }
    }
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

/* nvml.h nvmlProcessInfo_t (v2 layout), as the _v3 list functions fill it. */
typedef struct { unsigned int pid; unsigned long long usedGpuMemory; unsigned int gpuInstanceId, computeInstanceId; } proc_t;

static int processes(void *d, char kind, unsigned int *count, proc_t *infos) {
    gpu_t *g = dev(d);
    if (!g || !count) return INVALID;
    if (trouble(g)) return trouble(g);
    if (g->proc_error) return g->proc_error;
    unsigned int n = 0;
    for (int i = 0; i < g->nprocs; i++) n += g->proc_kind[i] == kind;
    if (!infos || *count < n) { *count = n; return n ? INSUFFICIENT : OK; }
    unsigned int k = 0;
    for (int i = 0; i < g->nprocs; i++) {
        if (g->proc_kind[i] != kind) continue;
        infos[k].pid = g->proc_pid[i];
        /* NVML_VALUE_NOT_AVAILABLE is (unsigned long long)-1 */
        infos[k].usedGpuMemory = g->proc_mib[i] < 0 ? ~0ULL : (unsigned long long)g->proc_mib[i] * 1024 * 1024;
        infos[k].gpuInstanceId = infos[k].computeInstanceId = 0xFFFFFFFF;
        k++;
    }
    *count = k;
    return OK;
}
int nvmlDeviceGetComputeRunningProcesses_v3(void *d, unsigned int *count, proc_t *infos) { return processes(d, 'c', count, infos); }
int nvmlDeviceGetGraphicsRunningProcesses_v3(void *d, unsigned int *count, proc_t *infos) { return processes(d, 'g', count, infos); }

/* ---- Board values: PCIe maxima and replays, fabric registration, memory health, violation counters. ---- */

typedef struct {
    int has_pcie_max; unsigned pcie_max_gen, pcie_max_width;
    int has_replay; unsigned long long replay_start, replay_step;
    int has_fabric; unsigned fabric_state, fabric_mask; int fabric_status;
    int has_sram; unsigned sram;
    int has_unrepairable; unsigned unrepairable;
    int has_hist; unsigned hist[5];
    int has_violation; unsigned long long violation_ms[2];
} board_t;

static board_t board[MAX_GPUS];

/* Parses one spec line of the board keywords; 1 when it was one. */
static int load_board(const char *line) {
    int i; unsigned a, b, c, d, e; long long x, y; int st;
#define GPU_OK (i >= 0 && i < ngpus)
    if (sscanf(line, "pcie_max %d %u %u", &i, &a, &b) == 3 && GPU_OK) {
        board[i].has_pcie_max = 1; board[i].pcie_max_gen = a; board[i].pcie_max_width = b; return 1;
    }
    if (sscanf(line, "pcie_replay %d %lld %lld", &i, &x, &y) == 3 && GPU_OK) {
        board[i].has_replay = 1; board[i].replay_start = (unsigned long long)x; board[i].replay_step = (unsigned long long)y;
        return 1;
    }
    if (sscanf(line, "fabric %d %u %d %u", &i, &a, &st, &b) == 4 && GPU_OK) {
        board[i].has_fabric = 1; board[i].fabric_state = a; board[i].fabric_status = st; board[i].fabric_mask = b; return 1;
    }
    if (sscanf(line, "sram %d %u", &i, &a) == 2 && GPU_OK) { board[i].has_sram = 1; board[i].sram = a; return 1; }
    if (sscanf(line, "unrepairable %d %u", &i, &a) == 2 && GPU_OK) {
        board[i].has_unrepairable = 1; board[i].unrepairable = a; return 1;
    }
    if (sscanf(line, "remap_hist %d %u %u %u %u %u", &i, &a, &b, &c, &d, &e) == 6 && GPU_OK) {
        board_t *t = &board[i];
        t->has_hist = 1; t->hist[0] = a; t->hist[1] = b; t->hist[2] = c; t->hist[3] = d; t->hist[4] = e; return 1;
    }
    if (sscanf(line, "violation %d %lld %lld", &i, &x, &y) == 3 && GPU_OK) {
        board[i].has_violation = 1; board[i].violation_ms[0] = (unsigned long long)x; board[i].violation_ms[1] = (unsigned long long)y;
        return 1;
    }
#undef GPU_OK
    return 0;
}

/* The GPU's board entry, or NULL with *r set to the error its query returns. */
static board_t *board_of(void *d, int *r) {
    gpu_t *g = dev(d);
    if (!g) { *r = INVALID; return NULL; }
    if (trouble(g)) { *r = trouble(g); return NULL; }
    *r = OK;
    return &board[g - gpus];
}

int nvmlDeviceGetMaxPcieLinkGeneration(void *d, unsigned int *v) {
    int r; board_t *b = board_of(d, &r);
    if (!b) return r;
    if (!b->has_pcie_max) return NOT_SUPPORTED;
    *v = b->pcie_max_gen;
    return OK;
}
int nvmlDeviceGetMaxPcieLinkWidth(void *d, unsigned int *v) {
    int r; board_t *b = board_of(d, &r);
    if (!b) return r;
    if (!b->has_pcie_max) return NOT_SUPPORTED;
    *v = b->pcie_max_width;
    return OK;
}
int nvmlDeviceGetPcieReplayCounter(void *d, unsigned int *v) {
    int r; board_t *b = board_of(d, &r);
    if (!b) return r;
    if (!b->has_replay) return NOT_SUPPORTED;
    *v = (unsigned)(b->replay_start + b->replay_step * (unsigned long long)dev(d)->nsamples);
    return OK;
}

/* nvml.h nvmlGpuFabricInfo_v3_t; a v2 caller gets all but the health summary. */
typedef struct { unsigned int version; unsigned char clusterUuid[16]; int status; unsigned int cliqueId;
                 unsigned char state; unsigned int healthMask; unsigned char healthSummary; } fabric_v3_t;
int nvmlDeviceGetGpuFabricInfoV(void *d, fabric_v3_t *f) {
    int r; board_t *b = board_of(d, &r);
    if (!b) return r;
    unsigned version = f->version >> 24;
    if (version != 2 && version != 3) return 25; /* NVML_ERROR_ARGUMENT_VERSION_MISMATCH */
    if (!b->has_fabric) return NOT_SUPPORTED;
    memset(f->clusterUuid, 0xab, sizeof f->clusterUuid);
    f->state = (unsigned char)b->fabric_state;
    f->status = b->fabric_status;
    f->cliqueId = 1;
    f->healthMask = b->fabric_mask;
    if (version == 3) f->healthSummary = 1;
    return OK;
}

typedef struct { unsigned int version; unsigned long long counts[11]; unsigned int bThresholdExceeded; } sram_t;
int nvmlDeviceGetSramEccErrorStatus(void *d, sram_t *s) {
    int r; board_t *b = board_of(d, &r);
    if (!b) return r;
    if (s->version != (sizeof(sram_t) | (1u << 24))) return 25;
    if (!b->has_sram) return NOT_SUPPORTED;
    memset(s->counts, 0, sizeof s->counts);
    s->bThresholdExceeded = b->sram;
    return OK;
}

typedef struct { unsigned int version; unsigned int bUnrepairableMemory; } unrepairable_t;
int nvmlDeviceGetUnrepairableMemoryFlag(void *d, unrepairable_t *u) {
    int r; board_t *b = board_of(d, &r);
    if (!b) return r;
    if (u->version != (sizeof(unrepairable_t) | (1u << 24))) return 25;
    if (!b->has_unrepairable) return NOT_SUPPORTED;
    u->bUnrepairableMemory = b->unrepairable;
    return OK;
}

typedef struct { unsigned int max, high, partial, low, none; } hist_t;
int nvmlDeviceGetRowRemapperHistogram(void *d, hist_t *h) {
    int r; board_t *b = board_of(d, &r);
    if (!b) return r;
    if (!b->has_hist) return NOT_SUPPORTED;
    h->max = b->hist[0]; h->high = b->hist[1]; h->partial = b->hist[2]; h->low = b->hist[3]; h->none = b->hist[4];
    return OK;
}

/* nvml.h nvmlViolationTime_t: a CPU time stamp in us and the violation time in ns. */
typedef struct { unsigned long long referenceTime, violationTime; } violation_t;
int nvmlDeviceGetViolationStatus(void *d, int policy, violation_t *v) {
    int r; board_t *b = board_of(d, &r);
    if (!b) return r;
    if (!b->has_violation || policy < 0 || policy > 1) return NOT_SUPPORTED; /* POWER 0, THERMAL 1 */
    unsigned long long n = (unsigned long long)dev(d)->nsamples;
    v->referenceTime = n * 1000000ULL;
    v->violationTime = b->violation_ms[policy] * n * 1000000ULL;
    return OK;
}
