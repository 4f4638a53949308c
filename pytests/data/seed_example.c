/* The seed's example (000_ce7b340c52974a87.txt), verbatim below the two
 * includes it needs: <sfork.h> (sfork, BIDIRECTIONAL) and <sys/user.h>
 * (PAGE_SIZE).  pytests/test_packaging.py builds it against the installed
 * library and runs it in a guest. */
#include <sfork.h>
#include <sys/user.h>

int main()
{
    void *addr;
    int pid = sfork(2 * PAGE_SIZE, BIDIRECTIONAL, &addr);
    if(pid)
    {
        // parent
    }
    else
    {
        //child
    }
}
