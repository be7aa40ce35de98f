// SPDX-License-Identifier: MIT
// job.h: the kinds and states of a job, apart from the scheduler's API
// (idunno/sched.h) so the layers below the coordinator that store and
// send jobs use these values too.
#ifndef IDUNNO_JOB_H
#define IDUNNO_JOB_H

#ifdef __cplusplus
extern "C" {
#endif

enum idn_job_kind { IDN_JOB_TRAIN, IDN_JOB_INFER };
// Where a training job's first weights come from: the model's model.pt
// (from scratch) or its trained weights in SDFS (fine-tuning).
enum idn_train_from { IDN_TRAIN_FROM_MODEL, IDN_TRAIN_FROM_WEIGHTS };
enum idn_job_state {
	IDN_JOB_QUEUED,
	IDN_JOB_RUNNING,
	IDN_JOB_DONE,
	IDN_JOB_FAILED,
	IDN_JOB_REMOVED,
};

#ifdef __cplusplus
}
#endif

#endif
