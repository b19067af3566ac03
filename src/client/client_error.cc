#include "client/client_error.h"

#include <uv.h>

namespace hirecache {

std::string CodeForUvStatus(int status) {
  switch (status) {
    case UV_EAI_NONAME:
    case UV_EAI_NODATA:
    case UV_EAI_FAIL:
      return "ENOTFOUND";  // As Node's dns and net modules report an unknown host.
    case UV_EAI_AGAIN:
      return "EAI_AGAIN";
    default:
      return uv_err_name(status);
  }
}

}  // namespace hirecache
