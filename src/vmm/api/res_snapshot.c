/* PUT /snapshot/create and /snapshot/load: issue 9 §3, not done yet. They answer 400 saying
 * so (after checking the call is well-formed), never a fake success. */
#include "vmm/api/resources.h"

int res_snapshot_put(struct api *a, const struct api_request *q, struct api_response *r,
		     vs_err_t *err)
{
	(void)a;
	(void)r;
	return vs_err(err, 0, "PUT %s: snapshots are not implemented in vessel yet", q->path);
}
