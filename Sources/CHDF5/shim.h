#include <hdf5.h>
#include <string.h>

/* HDF5 exposes these as macros over global ids, which Swift cannot import. */
static inline hid_t chdf5_P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t chdf5_S_ALL(void) { return H5S_ALL; }
static inline hid_t chdf5_P_FILE_CREATE(void) { return H5P_FILE_CREATE; }
static inline hid_t chdf5_P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t chdf5_P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t chdf5_T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t chdf5_T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t chdf5_T_NATIVE_INT8(void) { return H5T_NATIVE_INT8; }
static inline hid_t chdf5_T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t chdf5_T_NATIVE_INT16(void) { return H5T_NATIVE_INT16; }
static inline hid_t chdf5_T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t chdf5_T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t chdf5_T_NATIVE_UINT64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t chdf5_T_C_S1(void) { return H5T_C_S1; }
static inline unsigned chdf5_F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned chdf5_F_ACC_EXCL(void) { return H5F_ACC_EXCL; }
static inline unsigned chdf5_F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned chdf5_F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline size_t chdf5_T_VARIABLE(void) { return H5T_VARIABLE; }
/* Turns off HDF5's automatic printing of its error stack; errors become return codes. */
static inline herr_t chdf5_silence_errors(void) { return H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
static inline hid_t chdf5_P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t chdf5_P_DATASET_XFER(void) { return H5P_DATASET_XFER; }

/* Copies the most specific message of the calling thread's HDF5 error stack into `buffer`
 * (empty when the stack is empty), then clears the stack. */
static herr_t chdf5_error_walker(unsigned n, const H5E_error2_t *error, void *data) {
    char *buffer = (char *)((void **)data)[0];
    size_t size = *(size_t *)((void **)data)[1];
    if (n == 0 && error->desc != NULL && size > 0) {
        strncpy(buffer, error->desc, size - 1);
        buffer[size - 1] = '\0';
    }
    return 0;
}
static inline void chdf5_take_error_message(char *buffer, size_t size) {
    void *data[2] = { buffer, &size };
    if (size > 0) buffer[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, chdf5_error_walker, data);
    H5Eclear2(H5E_DEFAULT);
}

/* Conversion exceptions while reading: abort (the read fails) instead of HDF5's default of
 * silently clamping out-of-range values. Infinities and NaN pass through to floating-point
 * destinations and abort for integer destinations; precision loss (int64 -> float) is allowed. */
static H5T_conv_ret_t chdf5_conversion_exception(H5T_conv_except_t kind, hid_t source, hid_t destination,
                                                 void *source_buffer, void *destination_buffer, void *user) {
    (void)source; (void)destination; (void)source_buffer; (void)destination_buffer;
    int integer_destination = user != NULL;
    switch (kind) {
    case H5T_CONV_EXCEPT_PRECISION: return H5T_CONV_UNHANDLED;
    case H5T_CONV_EXCEPT_PINF: case H5T_CONV_EXCEPT_NINF: case H5T_CONV_EXCEPT_NAN:
        return integer_destination ? H5T_CONV_ABORT : H5T_CONV_UNHANDLED;
    default: return H5T_CONV_ABORT;
    }
}
static inline herr_t chdf5_abort_on_lossy_conversion(hid_t transfer_list, int integer_destination) {
    static int marker;
    return H5Pset_type_conv_cb(transfer_list, chdf5_conversion_exception, integer_destination ? &marker : NULL);
}
