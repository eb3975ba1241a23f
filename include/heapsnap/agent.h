/*
 * heapsnap/agent.h: the client of the in-process agent (heapsnap.agent in
 * a Python program), Linux only. The protocol is formats/agent-protocol.md:
 * one command line in, one JSON object line out, over a Unix stream socket
 * that only the target's user and root may use.
 *
 *     hs_agent *a;
 *     char *reply;
 *     if (hs_agent_connect(&a, pid, 5.0) == 0) {
 *         if (hs_agent_request(a, "STATS fast", &reply, 5.0) == 0) {
 *             ... parse reply (a JSON object; check its "ok") ...
 *             hs_agent_reply_free(reply);
 *         }
 *         hs_agent_free(a);
 *     }
 *
 * Where the socket is looked for, in order (the first that exists, is a
 * socket and belongs to the target's effective uid is used; paths go
 * through /proc/PID/root, so a target in a container is reached too):
 *   1. $HEAPSNAP_AGENT_DIR/agent-PID.sock, when the target's environment
 *      (/proc/PID/environ) sets HEAPSNAP_AGENT_DIR;
 *   2. /tmp/heapsnap-UID/agent-PID.sock, UID the target's effective uid;
 *   3. a listening socket named agent-N.sock among the target's open file
 *      descriptors (matched through /proc/PID/net/unix): an agent whose
 *      directory or pid differs (another pid namespace, a changed
 *      environment).
 */
#ifndef HEAPSNAP_AGENT_H
#define HEAPSNAP_AGENT_H

#include "common.h"

/** The protocol version this client speaks (HELLO's "protocol"). */
#define HS_AGENT_PROTOCOL 1
/** The longest command line, its newline included. */
#define HS_AGENT_LINE_MAX 4096
/**
 * The longest reply line accepted, its newline excluded: 4 MiB (TYPES
 * replies of large programs are far below: see formats/agent-protocol.md).
 * TRACK and MARKS replies may be larger (every allocation site's
 * definition; 4,096 markers of up to 1,024 characters): 32 MiB. A longer
 * line is an error, and the connection is closed.
 */
#define HS_AGENT_REPLY_MAX (4u * 1024u * 1024u)
#define HS_AGENT_REPLY_MAX_LARGE (32u * 1024u * 1024u)

typedef struct hs_agent hs_agent;

/**
 * Find the socket of the agent of process `pid` and write its path (a
 * path this process can connect to, usually under /proc/PID/root) into
 * `out`, `size` bytes.
 * @return 0, HS_ENOTFOUND (no such process, or no agent socket: the
 *         message says which), HS_EIO (the process belongs to another
 *         user and this one is not root; or a socket exists but belongs to
 *         another user than the process's: not used), HS_EINVAL.
 */
HS_EXTERN(int) hs_agent_find(char *out, size_t size, int pid);

/**
 * Connect to the agent of process `pid` and check it, waiting at most
 * `timeout` seconds (<= 0: no limit): the socket's peer (SO_PEERCRED) must
 * be the process or one of its descendants, running as the process's
 * effective uid, and HELLO must answer a valid reply for that process.
 * @return 0 with *out set (free it with hs_agent_free), HS_ENOTFOUND (no
 *         agent: no socket, or a stale one nobody listens on), HS_EIO
 *         (permission, refused by the agent, no answer in time, the
 *         connection closed), HS_EFORMAT (it does not speak the protocol,
 *         or another process answers on the socket),
 *         HS_ENOMEM, HS_EINVAL.
 */
HS_EXTERN(int) hs_agent_connect(hs_agent **out, int pid, double timeout);

/**
 * Send one command (without its newline: at most HS_AGENT_LINE_MAX - 1
 * bytes, no newline inside) and wait at most `timeout` seconds (<= 0: no
 * limit) for the reply line.
 * @return 0 with *out_reply_json set to the reply, a NUL-terminated JSON
 *         object without its newline, whatever its "ok" says (the caller
 *         checks it; free it with hs_agent_reply_free); HS_EIO (the
 *         connection failed or closed, no reply in time: the connection
 *         is then unusable), HS_ELIMIT (the reply line is longer than
 *         HS_AGENT_REPLY_MAX, or _LARGE for TRACK and MARKS: the connection
 *         is closed), HS_EFORMAT (the reply is not a JSON object
 *         line), HS_EINVAL (bad command), HS_ENOMEM.
 */
HS_EXTERN(int) hs_agent_request(hs_agent *a, const char *command, char **out_reply_json,
                                double timeout);

struct cJSON;

/**
 * hs_agent_request, then the reply parsed and validated for the command
 * (HELLO, STATS, TYPES, MARKS, GCEVENTS, DUMP, TRACK; other commands: a
 * JSON object with a boolean "ok"): each field the clients read has its
 * type, numbers are finite and non-negative, counts integral; "ok": false
 * carries a string "error". A reply that breaks these rules comes from
 * something that is not a working agent: its message names the socket,
 * the process, the command and the field.
 * @return 0 with *out set to the reply (ok true or false; free it with
 *         cJSON_Delete); HS_EIO, HS_ELIMIT (as hs_agent_request),
 *         HS_EFORMAT (not a valid reply), HS_EINVAL, HS_ENOMEM.
 */
HS_EXTERN(int) hs_agent_call(hs_agent *a, const char *command, struct cJSON **out, double timeout);

/** The "error" of a reply whose "ok" is false ("no message" when absent). */
HS_EXTERN(const char *) hs_agent_reply_error(const struct cJSON *reply);

/**
 * Check what an ok DUMP reply claims: its "path" is `path` (the file asked
 * for), and that file is a regular file (not a symbolic link), owned by
 * the target's effective uid or by this process's, modified at or after
 * `since` (wall-clock seconds, the time the DUMP was sent), and a heapsnap
 * snapshot (header, index and footer valid) holding the "objects" the
 * reply counts, of the "bytes" it says.
 * @return 0, HS_EFORMAT (the reply or the file is not what the agent
 *         claims; the message names the socket, the file and the problem),
 *         HS_EINVAL.
 */
HS_EXTERN(int) hs_agent_check_dump(const hs_agent *a, const struct cJSON *reply, const char *path,
                                   double since);

/** Free a reply of hs_agent_request. NULL is a no-op. */
HS_EXTERN(void) hs_agent_reply_free(char *reply);

/** Close the connection and free `a`. NULL is a no-op. */
HS_EXTERN(void) hs_agent_free(hs_agent *a);

/** The socket path connected to; borrowed from `a`. */
HS_EXTERN(const char *) hs_agent_socket(const hs_agent *a);

/** The agent's HELLO reply (a JSON object); borrowed from `a`. */
HS_EXTERN(const char *) hs_agent_hello(const hs_agent *a);

#endif
