/*
 * keyring: the kernel's keyrings are not namespaced, so a container reaching them shares
 * them with its host. Adds a key to this process's own keyring (gone when it exits) and asks
 * for the id of the session keyring it inherited (a read). Prints "add_key: VERDICT" and
 * "keyctl: VERDICT".
 */
#include "probe.h"
#include <linux/keyctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    verdict("add_key", syscall(SYS_add_key, "user", "ctr-probe", "x", 1,
                               KEY_SPEC_PROCESS_KEYRING));
    verdict("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
    return 0;
}
