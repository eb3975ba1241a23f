/* libFuzzer driver for the recording reader (formats/recording-v1.md): any
 * input must load or fail cleanly, never crash, hang, leak or allocate
 * beyond what its bytes justify; a loaded recording must survive the
 * timeline analysis too. */
#include <stddef.h>
#include <stdint.h>
#include "heapsnap/recording.h"
#include "heapsnap/timeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hs_recording *r;
	if (hs_recording_open_memory(&r, data, size, "fuzz.hsrec", NULL) < 0)
		return 0;
	uint64_t sum = 0;
	for (size_t i = 0; i < hs_recording_process_count(r); i++) {
		const hs_rec_process *p = hs_recording_process(r, i);
		for (int m = 0; m < HS_REC_METRIC_COUNT; m++) {
			hs_rec_series s;
			hs_rec_process_series(&s, p, (hs_rec_metric)m);
			for (size_t k = 0; k < s.count; k++)
				sum += (uint64_t)s.v[k] + (uint64_t)s.t[k];
			int64_t v;
			if (s.count && hs_rec_process_value_at(&v, p, (hs_rec_metric)m, s.t[s.count / 2]) == 0)
				sum += (uint64_t)v;
		}
		for (size_t k = 0; k < hs_rec_process_types_count(p); k++)
			sum += hs_rec_process_types(p, k)->count;
		for (size_t k = 0; k < p->argc; k++)
			sum += (uint8_t)p->argv[k][0];
	}
	for (size_t i = 0; i < hs_recording_marker_count(r); i++)
		sum += (uint8_t)hs_recording_marker(r, i)->label[0];
	hs_timeline *t;
	if (hs_timeline_build(&t, r, NULL) == 0) {
		sum += t->phase_count + (uint64_t)t->peak_rss.bytes;
		hs_timeline_free(t);
	}
	hs_recording_free(r);
	return sum == 42 ? 0 : 0;
}
