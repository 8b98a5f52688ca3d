// The image editor: a modal <dialog> over the library, a product's photos or the uploads.
// It draws the unedited original (the API's `source.url`) turned and mirrored as the edits say,
// with a crop box (drag it or its corners; arrows move it, Shift+arrows resize it), the aspect
// buttons, quarter turns, flips, the focal point (click the picture, or arrows on its marker),
// and named crops drawn on the edited picture. Save is one PUT …/edits (then the focal point,
// if it was moved); "Back to original" is DELETE …/edits. The geometry is editgeometry.js.
//
// showModal() makes the rest of the page inert and closes on Esc; Tab and Shift+Tab go round
// inside the dialog (focus.js).
import {api, consoleMedia, el, show} from './api.js';
import * as g from './editgeometry.js';
import {wrapTab} from './focus.js';

const SUGGESTED = ['hero', 'card', 'og'];

let dialog = null;

// The image object in an answer: the image itself, or (a product's photo) the product with it.
export function imageIn(answer, id) {
  if (answer && Array.isArray(answer.images)) return answer.images.find((image) => image.id === id) || null;
  return answer;
}

function button(label, attrs = {}) {
  return el('button', {type: 'button', class: 'secondary', ...attrs}, label);
}

// Open the editor on `image` (an image object), whose API path is `base`
// (e.g. /api/builder/media/<id>). `onSaved(answer)` gets each answer that made a new version.
export async function openEditor({image, base, onSaved}) {
  if (dialog) dialog.remove();
  if (!image.source && image.edits) {
    // A list's image object may leave out where its original is: the image's own answer says.
    try {
      image = {...image, ...imageIn(await api('GET', base), image.id)};
    } catch {
      // Said below: the editor cannot draw it.
    }
  }
  const source = image.source || (image.edits ? null : {url: image.url, width: image.width, height: image.height});
  let saved = image;
  let edits = {...g.IDENTITY, ...(g.normalise(image.edits) || {})};
  edits.crop = edits.crop || {...g.FULL};
  let ratio = null;
  let focal = null;  // a point of the whole turned picture, once clicked (not saved yet)
  let focalMode = false;
  let named = null;  // {name, box}: drawing a named crop on the edited picture
  let dragging = null;

  const title = el('h2', {id: 'editor-title'}, `Edit ${image.filename || 'image'}`);
  const canvas = el('canvas', {role: 'img', 'aria-label': `${image.filename || 'The image'} as edited so far`});
  const crop = el('div', {class: 'crop-box', tabindex: '0', role: 'group', 'aria-label': 'Crop box',
    'aria-describedby': 'editor-help'},
  ...['nw', 'ne', 'sw', 'se'].map((corner) => el('span', {class: `handle ${corner}`, dataset: {corner}, 'aria-hidden': 'true'})));
  const marker = el('div', {class: 'focal-marker editor-focal', tabindex: '-1', role: 'group',
    'aria-label': 'Focal point', 'aria-describedby': 'editor-focal-help', hidden: true});
  const stage = el('div', {class: 'editor-stage'}, canvas, crop, marker);
  const size = el('p', {class: 'muted', id: 'editor-size', 'aria-live': 'polite'});
  const help = el('p', {class: 'muted', id: 'editor-help'},
    'Drag the box or its corners. With the box focused: arrows move it, Shift+arrows resize it.');
  const focalHelp = el('p', {class: 'muted', id: 'editor-focal-help', hidden: true},
    'Click where the subject is, or focus the marker and move it with the arrows.');
  const error = el('p', {class: 'message error', role: 'alert', hidden: true});
  const status = el('p', {class: 'message', role: 'status', 'aria-live': 'polite', hidden: true});

  const ratioButtons = g.RATIOS.map((choice) => button(choice.label, {'aria-pressed': String(choice.ratio === null),
    onclick: () => chooseRatio(choice.ratio)}));
  const flipH = button('Flip horizontal', {'aria-pressed': 'false', onclick: () => change(g.flipEdits(edits, 'horizontal'))});
  const flipV = button('Flip vertical', {'aria-pressed': 'false', onclick: () => change(g.flipEdits(edits, 'vertical'))});
  const focalButton = button('Set focal point', {'aria-pressed': 'false', onclick: () => setFocalMode(!focalMode)});
  const nameInput = el('input', {id: 'editor-crop-name', list: 'editor-crop-names', value: 'hero', maxlength: '32',
    pattern: '[a-z][a-z0-9_\\-]{0,31}', autocomplete: 'off'});
  const savedCrops = el('ul', {class: 'named-crops', 'aria-label': 'Named crops saved'});
  const drawNamed = button('Draw named crop', {onclick: () => startNamed()});
  const saveNamed = button('Save named crop', {hidden: true, onclick: () => storeNamed()});
  const deleteNamed = button('Delete named crop', {class: 'danger', hidden: true, onclick: () => removeNamed()});
  const doneNamed = button('Back to the picture', {hidden: true, onclick: () => stopNamed()});
  const ratios = el('fieldset', {}, el('legend', {}, 'Aspect ratio'), el('div', {class: 'row small'}, ...ratioButtons));
  const pictureTools = el('div', {class: 'editor-picture-tools'},
    el('fieldset', {}, el('legend', {}, 'Turn and mirror'), el('div', {class: 'row small'},
      button('Rotate left', {onclick: () => change(g.turnEdits(edits, -1), -1)}),
      button('Rotate right', {onclick: () => change(g.turnEdits(edits, 1), 1)}), flipH, flipV)),
    el('div', {class: 'row small'}, focalButton));
  const saveButton = el('button', {type: 'button', onclick: () => save()}, 'Save');
  const originalButton = button('Back to original', {onclick: () => backToOriginal()});

  dialog = el('dialog', {class: 'editor', 'aria-labelledby': 'editor-title'},
    title,
    el('div', {class: 'editor-body'},
      el('div', {class: 'editor-view'}, stage, size),
      el('div', {class: 'editor-tools'},
        help, focalHelp, ratios, pictureTools,
        el('fieldset', {}, el('legend', {}, 'Named crops'),
          el('p', {class: 'muted'}, 'A framing per use (hero, card, og…), drawn on the saved picture; '
            + 'renditions ask for it as c_<name>.'),
          el('p', {class: 'row small'}, el('label', {for: nameInput.id}, 'Crop name'), nameInput,
            el('datalist', {id: 'editor-crop-names'}, ...SUGGESTED.map((name) => el('option', {value: name})))),
          el('p', {class: 'row small'}, drawNamed, saveNamed, deleteNamed, doneNamed),
          savedCrops))),
    error, status,
    el('div', {class: 'row editor-actions'}, saveButton, originalButton,
      button('Cancel', {onclick: () => dialog.close()})));
  dialog.addEventListener('close', () => dialog.remove());
  dialog.addEventListener('keydown', (event) => wrapTab(dialog, event));
  document.body.append(dialog);

  // The picture: the source drawn turned and mirrored on an offscreen canvas, then the part in
  // view (all of it, or the saved crop while drawing a named crop) on the visible one.
  const picture = new Image();
  picture.decoding = 'async';
  const whole = document.createElement('canvas');

  function turnedSize() {
    return g.turnedSize(source, edits.rotate);
  }
  // The picture the box is drawn on, in pixels: the whole turned picture, or the edited one.
  function viewSize() {
    const full = turnedSize();
    const view = viewBox();
    return {width: full.width * view.width, height: full.height * view.height};
  }
  function viewBox() {
    return named ? (g.normalise(saved.edits)?.crop || g.FULL) : g.FULL;
  }
  function currentBox() {
    return named ? named.box : edits.crop;
  }
  function setBox(box) {
    if (named) named.box = box;
    else edits.crop = box;
    place();
  }

  function draw() {
    if (!picture.naturalWidth) return;
    const turned = g.turnedSize({width: picture.naturalWidth, height: picture.naturalHeight}, edits.rotate);
    whole.width = turned.width;
    whole.height = turned.height;
    const context = whole.getContext('2d');
    context.save();
    context.translate(turned.width / 2, turned.height / 2);
    context.scale(edits.flip_horizontal ? -1 : 1, edits.flip_vertical ? -1 : 1);
    context.rotate((edits.rotate * Math.PI) / 180);
    context.drawImage(picture, -picture.naturalWidth / 2, -picture.naturalHeight / 2);
    context.restore();
    const view = viewBox();
    const scale = Math.min(1, 1200 / Math.max(turned.width * view.width, turned.height * view.height));
    canvas.width = Math.max(1, Math.round(turned.width * view.width * scale));
    canvas.height = Math.max(1, Math.round(turned.height * view.height * scale));
    canvas.getContext('2d').drawImage(whole, view.x * turned.width, view.y * turned.height,
      view.width * turned.width, view.height * turned.height, 0, 0, canvas.width, canvas.height);
    stage.dataset.drawn = `${edits.rotate} ${edits.flip_horizontal} ${edits.flip_vertical} ${named ? named.name : ''}`;
    place();
  }

  // The crop box and the focal marker over the canvas, in percent of it.
  function place() {
    const box = currentBox();
    Object.assign(crop.style, {left: `${box.x * 100}%`, top: `${box.y * 100}%`,
      width: `${box.width * 100}%`, height: `${box.height * 100}%`});
    const pixels = g.boxPixels(box, viewSize());
    const what = named ? `Named crop “${named.name}”` : 'Crop';
    crop.setAttribute('aria-label', `${what}: ${pixels.width} × ${pixels.height} px, from ${Math.round(box.x * 100)} % `
      + `across and ${Math.round(box.y * 100)} % down`);
    size.textContent = `${what}: ${pixels.width} × ${pixels.height} px of ${Math.round(viewSize().width)} × `
      + `${Math.round(viewSize().height)} px.`;
    const point = focalPoint();
    marker.hidden = Boolean(named) || !(focalMode || focal);
    marker.style.left = `${point.x * 100}%`;
    marker.style.top = `${point.y * 100}%`;
    marker.setAttribute('aria-label', `Focal point: ${Math.round(point.x * 100)} % across, ${Math.round(point.y * 100)} % down`);
    flipH.setAttribute('aria-pressed', String(edits.flip_horizontal));
    flipV.setAttribute('aria-pressed', String(edits.flip_vertical));
    ratioButtons.forEach((node, index) => node.setAttribute('aria-pressed', String(g.RATIOS[index].ratio === ratio)));
  }

  // The focal point shown: the one clicked, or the saved one (a point of the edited picture).
  function focalPoint() {
    if (focal) return focal;
    const savedEdits = g.normalise(saved.edits);
    if (!g.sameEdits(savedEdits, edits)) return {x: 0.5, y: 0.5};
    return g.outOfCrop(saved.focal_point || {x: 0.5, y: 0.5}, savedEdits?.crop);
  }

  function change(next, turn = 0) {
    if (named) return;
    edits = next;
    edits.crop = edits.crop || {...g.FULL};
    if (focal && turn) focal = g.turnPoint(focal, turn);
    // A quarter turn makes a 4:5 box 5:4: the largest box of the chosen ratio again (fitting
    // it inside the turned box would shrink it at every turn).
    if (ratio && turn) edits.crop = g.fitRatio(g.FULL, ratio, turnedSize());
    draw();
  }

  function chooseRatio(value) {
    ratio = value;
    if (ratio) setBox(g.fitRatio(named ? named.box : g.FULL, ratio, viewSize()));
    else place();
  }

  function setFocalMode(on) {
    focalMode = on;
    focalButton.setAttribute('aria-pressed', String(on));
    focalHelp.hidden = !on;
    stage.classList.toggle('focal-mode', on);
    marker.tabIndex = on ? 0 : -1;
    place();
    if (on) marker.focus();
  }

  // Pointer input: a corner resizes, inside the box moves it, anywhere with the focal point on sets it.
  function fraction(event) {
    const rect = canvas.getBoundingClientRect();
    return {x: Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width)),
      y: Math.min(1, Math.max(0, (event.clientY - rect.top) / rect.height))};
  }
  stage.addEventListener('pointerdown', (event) => {
    const at = fraction(event);
    if (focalMode && !named) {
      focal = {x: g.round(at.x), y: g.round(at.y)};
      place();
      return;
    }
    const corner = event.target.dataset?.corner;
    if (!corner && event.target !== crop) return;
    event.preventDefault();
    stage.setPointerCapture(event.pointerId);
    dragging = {corner, from: at, box: {...currentBox()}};
  });
  stage.addEventListener('pointermove', (event) => {
    if (!dragging) return;
    const at = fraction(event);
    setBox(dragging.corner ? g.dragCorner(dragging.box, dragging.corner, at, ratio, viewSize())
      : g.moveBox(dragging.box, at.x - dragging.from.x, at.y - dragging.from.y));
  });
  stage.addEventListener('pointerup', () => {
    dragging = null;
  });
  crop.addEventListener('keydown', (event) => {
    if (!event.key.startsWith('Arrow')) return;
    event.preventDefault();
    setBox(g.nudge(currentBox(), event.key, event.shiftKey, ratio, viewSize()));
  });
  marker.addEventListener('keydown', (event) => {
    const moves = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]};
    if (!moves[event.key]) return;
    event.preventDefault();
    const point = focalPoint();
    const [dx, dy] = moves[event.key];
    focal = {x: g.round(Math.min(1, Math.max(0, point.x + dx * 0.01))), y: g.round(Math.min(1, Math.max(0, point.y + dy * 0.01)))};
    place();
  });

  function fail(problem) {
    show(status, '');
    show(error, problem.message, 'error');
  }
  function done(text) {
    show(error, '');
    show(status, text, 'ok');
  }
  function took(answer) {
    saved = imageIn(answer, image.id) || saved;
    onSaved(answer);
    listCrops();
  }

  async function save() {
    const wanted = g.normalise(edits);
    const changed = !g.sameEdits(wanted, saved.edits);
    if (!changed && !focal) {
      dialog.close();
      return;
    }
    saveButton.disabled = true;
    try {
      if (changed) {
        took(await api('PUT', `${base}/edits`, wanted || {}));
      }
      if (focal) {
        took(await api('PUT', `${base}/focal-point`, g.intoCrop(focal, wanted?.crop)));
      }
      dialog.close();
    } catch (problem) {
      fail(problem);
    } finally {
      saveButton.disabled = false;
    }
  }

  async function backToOriginal() {
    try {
      took(await api('DELETE', `${base}/edits`));
      edits = {...g.IDENTITY, crop: {...g.FULL}};
      focal = null;
      ratio = null;
      draw();
      done('Back to the original picture; named crops and the focal point are kept.');
    } catch (problem) {
      fail(problem);
    }
  }

  // Named crops: drawn on the saved (edited) picture, one PUT or DELETE each.
  function listCrops() {
    const crops = Object.entries(saved.crops || {});
    savedCrops.replaceChildren(...(crops.length
      ? crops.map(([name]) => el('li', {}, button(name, {'aria-label': `Draw named crop ${name}`, onclick: () => {
        nameInput.value = name;
        startNamed();
      }})))
      : [el('li', {class: 'muted'}, 'None yet.')]));
  }
  function cropName() {
    const name = nameInput.value.trim();
    if (!g.CROP_NAME.test(name)) {
      fail({message: 'A crop name is a lowercase letter, then up to 31 letters, digits, _ or -.'});
      return null;
    }
    return name;
  }
  function startNamed() {
    if (!g.sameEdits(edits, saved.edits) || focal) {
      fail({message: 'Save or cancel the changes to the picture first: named crops are drawn on the saved picture.'});
      return;
    }
    const name = cropName();
    if (!name) return;
    const existing = (saved.crops || {})[name];
    named = {name, box: existing ? {...existing} : {...g.FULL}};
    ratio = name === 'og' && !existing ? 1.91 : null;
    if (ratio) named.box = g.fitRatio(g.FULL, ratio, viewSize());
    setFocalMode(false);
    pictureTools.hidden = true;
    saveButton.disabled = true;
    originalButton.disabled = true;
    saveNamed.hidden = false;
    deleteNamed.hidden = !existing;
    doneNamed.hidden = false;
    drawNamed.hidden = true;
    nameInput.readOnly = true;
    show(error, '');
    show(status, `Drawing the named crop “${name}” on the saved picture.`);
    draw();
    crop.focus();
  }
  function stopNamed() {
    named = null;
    ratio = null;
    pictureTools.hidden = false;
    saveButton.disabled = false;
    originalButton.disabled = false;
    saveNamed.hidden = true;
    deleteNamed.hidden = true;
    doneNamed.hidden = true;
    drawNamed.hidden = false;
    nameInput.readOnly = false;
    draw();
  }
  async function storeNamed() {
    try {
      took(await api('PUT', `${base}/crops/${named.name}`, g.roundBox(named.box)));
      const name = named.name;
      stopNamed();
      done(`Named crop “${name}” saved.`);
    } catch (problem) {
      fail(problem);
    }
  }
  async function removeNamed() {
    try {
      took(await api('DELETE', `${base}/crops/${named.name}`));
      const name = named.name;
      stopNamed();
      done(`Named crop “${name}” deleted.`);
    } catch (problem) {
      fail(problem);
      if (problem.code === 'crop_not_found') {
        // Deleted elsewhere meanwhile: list the crops the image has now.
        try {
          saved = imageIn(await api('GET', base), image.id) || saved;
          listCrops();
        } catch {
          // The refusal above is what matters.
        }
      }
    }
  }

  listCrops();
  dialog.showModal();
  if (!source) {
    fail({message: 'The server did not say where the original picture is; the editor cannot draw it.'});
    return dialog;
  }
  picture.addEventListener('load', draw);
  picture.addEventListener('error', () => fail({message: 'The original picture could not be loaded.'}));
  picture.src = consoleMedia(source.url);
  place();
  return dialog;
}
