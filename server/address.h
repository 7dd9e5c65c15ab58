// Whether a listen address only accepts connections from this machine — what decides if the
// server may run without TLS and tokens (see ServerOptions::insecure).
#ifndef FLOWVI_SERVER_ADDRESS_H_
#define FLOWVI_SERVER_ADDRESS_H_

#include "absl/strings/string_view.h"

namespace flowvi::server {

// True for gRPC and civetweb listen addresses on loopback: "127.0.0.1:50051" (any 127/8
// address), "localhost:50051", "[::1]:50051", and Unix sockets ("unix:/path"). False for
// everything else, including "0.0.0.0:50051", "[::]:50051", ":50051", a bare port ("9464",
// which civetweb binds on every interface), host names and anything unparsable.
bool IsLoopbackAddress(absl::string_view address);

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_ADDRESS_H_
