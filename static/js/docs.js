// The API reference page (/docs): Redoc renders the OpenAPI document named by #redoc's data-spec-url.
document.addEventListener("DOMContentLoaded", () => {
  const container = document.getElementById("redoc");
  window.Redoc.init(
    container.dataset.specUrl,
    { expandResponses: "200,201,202", hideDownloadButton: false, sortTagsAlphabetically: false },
    container,
  );
});
