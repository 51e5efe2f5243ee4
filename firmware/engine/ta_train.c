#include "tinyadapt/ta_train.h"

/* Skeleton: the API compiles; the implementation lands in the next commits. */
ta_status_t ta_train_init(ta_trainer_t *t, ta_engine_t *engine, uint8_t *param_ram, size_t param_ram_size)
{
    (void)t; (void)engine; (void)param_ram; (void)param_ram_size;
    return TA_ERR_UNSUPPORTED;
}
size_t ta_train_param_ram_size(const ta_model_t *model) { (void)model; return 0; }
ta_status_t ta_train_step(ta_trainer_t *t, ta_loss_kind_t loss, int32_t label, float lr, ta_train_result_t *out)
{
    (void)t; (void)loss; (void)label; (void)lr; (void)out;
    return TA_ERR_UNSUPPORTED;
}
ta_status_t ta_train_eval(ta_trainer_t *t, int32_t label, ta_train_result_t *out)
{
    (void)t; (void)label; (void)out;
    return TA_ERR_UNSUPPORTED;
}
ta_status_t ta_train_params(const ta_trainer_t *t, const uint8_t **data, size_t *len)
{
    (void)t; (void)data; (void)len;
    return TA_ERR_UNSUPPORTED;
}
ta_status_t ta_train_load_params(ta_trainer_t *t, const uint8_t *data, size_t len)
{
    (void)t; (void)data; (void)len;
    return TA_ERR_UNSUPPORTED;
}
ta_status_t ta_train_reset(ta_trainer_t *t) { (void)t; return TA_ERR_UNSUPPORTED; }
