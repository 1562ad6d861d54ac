// Lets the small shared pieces (transition, random stream) compile for host and device alike.
#pragma once
#ifdef __CUDACC__
#define RN_HOST_DEVICE __host__ __device__
#else
#define RN_HOST_DEVICE
#endif
