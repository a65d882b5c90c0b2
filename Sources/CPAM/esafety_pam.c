#include "esafety_pam.h"

#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PAM's conversation: the password for a hidden prompt, nothing for anything else. The
   answers are PAM's to free. */
static int converse(int count, const struct pam_message **messages, struct pam_response **out, void *data) {
    if (count <= 0 || count > PAM_MAX_NUM_MSG) return PAM_CONV_ERR;
    struct pam_response *answers = calloc((size_t)count, sizeof(struct pam_response));
    if (answers == NULL) return PAM_BUF_ERR;
    for (int i = 0; i < count; i++) {
        if (messages[i]->msg_style == PAM_PROMPT_ECHO_OFF) {
            answers[i].resp = strdup((const char *)data);
            if (answers[i].resp == NULL) {
                for (int j = 0; j < i; j++) free(answers[j].resp);
                free(answers);
                return PAM_BUF_ERR;
            }
        }
    }
    *out = answers;
    return PAM_SUCCESS;
}

int esafety_pam_check(const char *service, const char *user, const char *password, char *error, size_t size) {
    struct pam_conv conversation = {converse, (void *)password};
    pam_handle_t *handle = NULL;
    int rc = pam_start(service, user, &conversation, &handle);
    if (rc == PAM_SUCCESS) rc = pam_authenticate(handle, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
    if (rc == PAM_SUCCESS) rc = pam_acct_mgmt(handle, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
    if (rc != PAM_SUCCESS && error != NULL && size > 0) snprintf(error, size, "%s", pam_strerror(handle, rc));
    if (handle != NULL) pam_end(handle, rc);
    return rc;
}
