// ParseErrorInterceptorFactory: gives a request that does not parse as its method's message
// the canonical INVALID_ARGUMENT. gRPC C++ (1.51, callback API) ends such a call itself, before
// any handler runs, with UNIMPLEMENTED and no message — which reads as "this server has no such
// method". No flowvi handler ever answers UNIMPLEMENTED, so an UNIMPLEMENTED status on a
// flowvi.v1 method can only be that failure.
//
// Stateless factory; each interceptor belongs to one call.
#ifndef FLOWVI_SERVER_PARSE_ERROR_INTERCEPTOR_H_
#define FLOWVI_SERVER_PARSE_ERROR_INTERCEPTOR_H_

#include <grpcpp/support/server_interceptor.h>

namespace flowvi::server {

class ParseErrorInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_PARSE_ERROR_INTERCEPTOR_H_
