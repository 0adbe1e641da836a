/* The study form's progressive enhancements (web/templates/studies/_form.html). Everything here
   has a plain-HTML fallback: without this script a screen is uploaded with the form on Save and
   targets are typed into their Targets field.

   - A chosen screen is stored at once (POST data-upload-url), shown, and its stored name put in
     the form, so validation and the row buttons never carry files.
   - Targets are drawn with the mouse, a pen or a finger (pointer events) on the shown screen and
     written into the Targets field in image pixels, whatever size the image is shown at. The
     field stays the source of truth: the drawing is redrawn from it as it changes.
   - The SEQ switch follows the method's default until the designer sets it.
   Loaded with defer and wired by delegation, so parts htmx swaps in work without re-binding. */
(() => {
  'use strict';

  const MB = 1024 * 1024;
  const uploadErrors = new Map(); // file input id -> message, kept across live-validation swaps
  let drawing = null;

  const formEl = () => document.getElementById('definition-form');

  // ---- files never travel with htmx requests (validation, row buttons) ----------------------------
  document.addEventListener('htmx:configRequest', (event) => {
    const data = event.detail.formData;
    if (!data || typeof data.entries !== 'function') return;
    for (const [name, value] of [...data.entries()]) {
      if (value instanceof File) data.delete(name);
    }
  });

  // ---- screens: upload when chosen --------------------------------------------------------------
  const parts = (editor) => ({
    picture: editor.querySelector('.screen-picture'),
    img: editor.querySelector('.screen-picture img'),
    layer: editor.querySelector('.screen-targets'),
    status: editor.querySelector('.screen-status'),
    file: document.getElementById(editor.dataset.file),
    image: document.getElementById(editor.dataset.image),
    text: document.getElementById(editor.dataset.targets),
  });

  const megabytes = (size, limit) => {
    // As the server says it (abtest.studies.images.megabytes): over the limit never reads as the limit.
    let tenths = Math.round(size * 10 / MB);
    if (size > limit && tenths * MB <= limit * 10) tenths = Math.ceil(size * 10 / MB);
    return `${(tenths / 10).toFixed(1)} MB`;
  };

  const showUploadError = (input, message) => {
    const slot = document.getElementById(`${input.id}-error`);
    if (message) uploadErrors.set(input.id, message); else uploadErrors.delete(input.id);
    if (slot) slot.textContent = message || '';
    if (message) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid');
  };

  const reapplyUploadErrors = () => {
    for (const [id, message] of uploadErrors) {
      const input = document.getElementById(id);
      const slot = document.getElementById(`${id}-error`);
      if (!input || !slot) { uploadErrors.delete(id); continue; }
      slot.textContent = message;
      input.setAttribute('aria-invalid', 'true');
    }
  };
  document.addEventListener('htmx:afterRequest', reapplyUploadErrors);
  document.addEventListener('htmx:afterSettle', reapplyUploadErrors);

  const showScreen = (editor, stored) => {
    const p = parts(editor);
    p.picture.dataset.width = stored.width;
    p.picture.dataset.height = stored.height;
    p.img.width = stored.width;
    p.img.height = stored.height;
    p.img.src = stored.url;
    p.picture.hidden = false;
    p.status.textContent = `Stored: ${stored.width} × ${stored.height} px; choose another file to replace it.`;
    redraw(editor);
  };

  const upload = async (input) => {
    const editor = input.closest('.screen-editor');
    const form = formEl();
    const file = input.files && input.files[0];
    if (!editor || !form || !file) return;
    const limit = Number(form.dataset.maxBytes) || 5 * MB;
    if (file.size > limit) {
      const said = `is ${megabytes(file.size, limit)}; the limit is ${Math.round(limit / MB)} MB`;
      showUploadError(input, `“${file.name}” ${said}`);
      return;
    }
    const body = new FormData();
    body.append('file', file);
    body.append('csrf_token', form.querySelector('input[name=csrf_token]').value);
    editor.classList.add('uploading');
    let answer = null;
    let status = 0;
    try {
      const response = await fetch(form.dataset.uploadUrl, {
        method: 'POST', body, credentials: 'same-origin', headers: { Accept: 'application/json' },
      });
      status = response.status;
      answer = await response.json().catch(() => null);
    } catch (error) {
      answer = null;
    } finally {
      editor.classList.remove('uploading');
    }
    if (answer && answer.image) {
      const p = parts(editor);
      p.image.value = answer.image;
      input.value = ''; // stored: Save carries the name, not the file again
      showUploadError(input, '');
      showScreen(editor, answer);
      p.image.dispatchEvent(new Event('change', { bubbles: true })); // live validation
    } else if (answer && answer.error) {
      showUploadError(input, `“${file.name}” ${answer.error.message}`);
    } else {
      showUploadError(input, `“${file.name}” could not be stored${status ? ` (HTTP ${status})` : ''}: ` +
                             'reload the page and try again');
    }
  };

  document.addEventListener('change', (event) => {
    const input = event.target;
    if (input instanceof HTMLInputElement && input.type === 'file' && input.closest('.screen-editor')) upload(input);
  });

  // ---- targets: the Targets field drawn over the screen -----------------------------------------
  const SPLIT = /[\s,;]+/;

  // Rectangles of the field, numbered by non-blank line as the server numbers them in its errors.
  const readTargets = (text) => {
    const out = [];
    let number = 0;
    text.split(/\r?\n/).forEach((line, index) => {
      const values = line.trim().replace(/^[[(]|[\])]$/g, '').split(SPLIT).filter(Boolean);
      if (!values.length) return;
      number += 1;
      const [x, y, w, h] = values.map(Number);
      if (values.length === 4 && [x, y, w, h].every(Number.isFinite) && w > 0 && h > 0) {
        out.push({ number, index, x, y, w, h });
      }
    });
    return out;
  };

  const sizeOf = (editor) => {
    const picture = editor.querySelector('.screen-picture');
    const w = Number(picture && picture.dataset.width);
    const h = Number(picture && picture.dataset.height);
    return w > 0 && h > 0 ? { w, h } : null;
  };

  const place = (el, rect, size) => {
    el.style.left = `${(100 * rect.x) / size.w}%`;
    el.style.top = `${(100 * rect.y) / size.h}%`;
    el.style.width = `${(100 * rect.w) / size.w}%`;
    el.style.height = `${(100 * rect.h) / size.h}%`;
  };

  function redraw(editor) {
    const p = parts(editor);
    const size = sizeOf(editor);
    if (!p.layer || !p.text) return;
    p.layer.replaceChildren();
    if (!size) return;
    const editable = editor.classList.contains('drawable');
    for (const rect of readTargets(p.text.value)) {
      const box = document.createElement('div');
      box.className = 'target';
      box.dataset.line = rect.index;
      place(box, rect, size);
      const number = document.createElement('span');
      number.className = 'target-number';
      number.textContent = rect.number;
      box.append(number);
      if (editable) {
        const remove = document.createElement('button');
        remove.type = 'button';
        remove.className = 'target-remove';
        remove.textContent = '×';
        remove.setAttribute('aria-label', `Remove rectangle ${rect.number}`);
        box.append(remove);
      }
      p.layer.append(box);
    }
  }

  const toImage = (editor, event) => {
    const size = sizeOf(editor);
    const box = parts(editor).layer.getBoundingClientRect();
    const clamp = (v, max) => Math.min(Math.max(v, 0), max);
    return {
      x: clamp(((event.clientX - box.left) / box.width) * size.w, size.w),
      y: clamp(((event.clientY - box.top) / box.height) * size.h, size.h),
    };
  };

  const spanned = (a, b) => {
    const x = Math.round(Math.min(a.x, b.x));
    const y = Math.round(Math.min(a.y, b.y));
    return { x, y, w: Math.round(Math.max(a.x, b.x)) - x, h: Math.round(Math.max(a.y, b.y)) - y };
  };

  const changed = (text) => text.dispatchEvent(new Event('input', { bubbles: true }));

  document.addEventListener('pointerdown', (event) => {
    const layer = event.target instanceof Element && event.target.closest('.screen-targets');
    const editor = layer && layer.closest('.screen-editor.drawable');
    if (!editor || event.target.closest('.target-remove') || !sizeOf(editor)) return;
    if (event.pointerType === 'mouse' && event.button !== 0) return;
    event.preventDefault();
    const box = document.createElement('div');
    box.className = 'target drawing';
    layer.append(box);
    layer.setPointerCapture(event.pointerId);
    drawing = { editor, layer, box, id: event.pointerId, start: toImage(editor, event) };
    place(box, { ...drawing.start, w: 0, h: 0 }, sizeOf(editor));
  });

  document.addEventListener('pointermove', (event) => {
    if (!drawing || event.pointerId !== drawing.id) return;
    place(drawing.box, spanned(drawing.start, toImage(drawing.editor, event)), sizeOf(drawing.editor));
  });

  const finish = (event, keep) => {
    if (!drawing || event.pointerId !== drawing.id) return;
    const { editor, box, start } = drawing;
    drawing = null;
    box.remove();
    if (!keep) return;
    const rect = spanned(start, toImage(editor, event));
    if (rect.w < 2 || rect.h < 2) return; // a tap, not a drag
    const text = parts(editor).text;
    const before = text.value.replace(/\s+$/, '');
    text.value = `${before ? `${before}\n` : ''}${rect.x}, ${rect.y}, ${rect.w}, ${rect.h}`;
    changed(text);
  };
  document.addEventListener('pointerup', (event) => finish(event, true));
  document.addEventListener('pointercancel', (event) => finish(event, false));

  document.addEventListener('click', (event) => {
    const remove = event.target instanceof Element && event.target.closest('.target-remove');
    if (!remove) return;
    const editor = remove.closest('.screen-editor');
    const text = parts(editor).text;
    const lines = text.value.split(/\r?\n/);
    lines.splice(Number(remove.closest('.target').dataset.line), 1);
    text.value = lines.join('\n');
    changed(text);
    text.focus();
  });

  document.addEventListener('input', (event) => {
    const editor = event.target instanceof Element && event.target.matches('.targets-text')
      && event.target.closest('.screen-editor');
    if (editor) redraw(editor);
  });

  // ---- the SEQ follows the method's default (on for usability) until the designer sets it --------
  let method = (document.querySelector('input[name=method]:checked') || {}).value;
  document.addEventListener('change', (event) => {
    const radio = event.target;
    if (!(radio instanceof HTMLInputElement) || radio.name !== 'method' || radio.type !== 'radio') return;
    const seq = document.getElementById('seq');
    if (seq && !seq.disabled && seq.checked === (method === 'usability')) seq.checked = radio.value === 'usability';
    method = radio.value;
  }, true); // capture: before htmx reads the form for live validation

  // ---- set up what is on the page now and whatever htmx swaps in --------------------------------
  const setUp = (root) => {
    if (!(root instanceof Element || root instanceof Document)) return;
    const editors = root.matches && root.matches('.screen-editor') ? [root] : root.querySelectorAll('.screen-editor');
    for (const editor of editors) {
      const p = parts(editor);
      editor.classList.toggle('drawable', Boolean(p.text && !p.text.readOnly && p.file && !p.file.disabled));
      redraw(editor);
    }
  };
  setUp(document);
  document.addEventListener('htmx:load', (event) => setUp(event.target));
})();
