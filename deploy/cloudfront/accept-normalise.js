// CloudFront Function (runtime cloudfront-js-2.0), event type: viewer request.
// Reduces Accept to the three cases image-origin distinguishes (origin/formats.py `negotiate`:
// AVIF if named with a non-zero q-value, else WebP likewise, else neither), and only for URLs
// with auto=format; every other URL gets one fixed Accept, so it is cached once.
// With Accept in the cache policy's key, a negotiated variant has at most three cached copies.

var OTHER = "image/jpeg,image/png,*/*";

function handler(event) {
  var request = event.request;
  var accept = request.headers.accept ? request.headers.accept.value : "";
  var value = OTHER;
  if (negotiates(request.querystring.auto)) {
    if (allows(accept, "image/avif")) {
      value = "image/avif,image/webp,*/*";
    } else if (allows(accept, "image/webp")) {
      value = "image/webp,*/*";
    }
  }
  request.headers.accept = { value: value };
  return request;
}

function negotiates(auto) {
  if (!auto) {
    return false;
  }
  var values = auto.multiValue ? auto.multiValue : [auto];
  for (var i = 0; i < values.length; i++) {
    var words = decodeURIComponent(values[i].value).split(",");
    for (var j = 0; j < words.length; j++) {
      if (words[j].trim() === "format") {
        return true;
      }
    }
  }
  return false;
}

function allows(accept, type) {
  var items = accept.slice(0, 4096).split(",");
  for (var i = 0; i < items.length; i++) {
    var params = items[i].split(";");
    if (params[0].trim().toLowerCase() !== type) {
      continue;
    }
    var q = 1;
    for (var j = 1; j < params.length; j++) {
      var pair = params[j].split("=");
      if (pair[0].trim().toLowerCase() === "q") {
        q = parseFloat(pair[1]);
        if (isNaN(q)) {
          q = 0;
        }
      }
    }
    if (q > 0) {
      return true;
    }
  }
  return false;
}

if (typeof module !== "undefined") {
  module.exports = { handler: handler };
}
