// Known plates: add / edit / delete and CSV import through the JSON API; errors stay on the page.
"use strict";

(function known() {
  const form = document.getElementById("known-form");
  if (!form) return;
  const err = document.getElementById("known-error");
  const title = document.getElementById("known-form-title");
  const submit = document.getElementById("known-submit");
  const cancel = document.getElementById("known-cancel");

  function showError(node, message) {
    node.textContent = message;
    node.hidden = !message;
  }

  function mode(editing, row) {
    form.dataset.mode = editing ? "edit" : "add";
    title.textContent = editing ? "Edit plate" : "Add a plate";
    submit.textContent = editing ? "Save" : "Add";
    cancel.hidden = !editing;
    showError(err, "");
    if (editing) {
      form.orig_list.value = form.list.value = row.dataset.list;
      form.orig_plate.value = row.dataset.plate;
      form.plate.value = row.dataset.plate.toUpperCase();
      form.name.value = row.querySelector('[data-field="name"]').textContent;
      form.note.value = row.querySelector('[data-field="note"]').textContent;
      form.plate.focus();
    } else {
      form.plate.value = form.name.value = form.note.value = "";
    }
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {list: form.list.value.trim(), plate: form.plate.value.trim(),
                  name: form.name.value.trim(), note: form.note.value.trim()};
    submit.disabled = true;
    try {
      if (form.dataset.mode === "edit") {
        const url = "/api/v1/known-plates/" + encodeURIComponent(form.orig_list.value) + "/" +
          encodeURIComponent(form.orig_plate.value);
        await api("PUT", url, body);
      } else {
        await api("POST", "/api/v1/known-plates", body);
      }
      location.reload();
    } catch (ex) {
      showError(err, ex.message);
    } finally {
      submit.disabled = false;
    }
  });
  cancel.addEventListener("click", () => mode(false));

  document.getElementById("known-table")?.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action]");
    if (!button) return;
    const row = button.closest("tr");
    if (button.dataset.action === "edit") { mode(true, row); return; }
    if (!confirm(`Delete ${row.dataset.plate.toUpperCase()} from ${row.dataset.list}?`)) return;
    try {
      await api("DELETE", "/api/v1/known-plates/" + encodeURIComponent(row.dataset.list) + "/" +
        encodeURIComponent(row.dataset.plate));
      row.remove();
    } catch (ex) {
      showError(err, ex.message);
    }
  });

  const imp = document.getElementById("import-form");
  const impErr = document.getElementById("import-error");
  const impOk = document.getElementById("import-ok");
  imp.addEventListener("submit", async (e) => {
    e.preventDefault();
    showError(impErr, ""); impOk.hidden = true;
    const file = imp.file.files[0];
    if (!file) { showError(impErr, "Choose a CSV file."); return; }
    const data = new FormData();
    data.append("file", file, file.name);
    const url = "/api/v1/known-plates.csv?list=" + encodeURIComponent(imp.list.value.trim()) +
      (imp.replace.checked ? "&replace=true" : "");
    try {
      const res = await api("POST", url, data);
      impOk.textContent = `Imported ${res.imported} plate(s) into ${res.list}.`;
      impOk.hidden = false;
      setTimeout(() => location.reload(), 800);
    } catch (ex) {
      showError(impErr, ex.message);
    }
  });
})();
