/*
 * euid: print "uid U euid E": run setuid-root by a user, it shows whether exec raised its
 * privileges (no_new_privs keeps the caller's).
 */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    printf("uid %d euid %d\n", (int)getuid(), (int)geteuid());
    return 0;
}
