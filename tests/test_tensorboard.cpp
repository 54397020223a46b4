// train_resnet18 --tensorboard DIR against the `tensorboard` package (torch 2.x venv): its EventAccumulator reads
// every scalar of the event file, equal (to float32, the type of Summary.Value.simple_value) to the values and
// steps of the --log JSONL lines, and every TFRecord's two masked CRC32Cs match tensorboard's own masked_crc32c.
#include "tests/helpers.h"

using namespace ht;
using testing::bin;
using testing::run_command;
using testing::run_python;

TEST_CASE("--tensorboard: EventAccumulator reads every scalar, equal to the --log values, CRCs valid") {
  std::string py = testing::torch2_python();  // the venv that holds the tensorboard package
  if (py.empty()) return;
  auto dir = testing::temp_dir("tensorboard");
  std::filesystem::remove_all(dir / "tb");  // exactly one event file: this run's
  // fp16 (the default precision) so train/loss_scale is written too; 4 batches and one evaluation
  auto r = run_command("cd " + dir.string() + " && " + bin("train_resnet18") +
                       " --device cpu --seed 5 --limit 256 --batch-size 64 --epochs 1 --out m.pth"
                       " --log run.jsonl --tensorboard tb");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  std::string code = "run_dir = '" + dir.string() + "'\n" + R"PY(
import glob, json, struct, numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
files = glob.glob(run_dir + '/tb/events.out.tfevents.*')
assert len(files) == 1, files
# every record's framing: both masked CRC32Cs match, and the file ends on a record boundary
raw, pos, events = open(files[0], 'rb').read(), 0, []
while pos < len(raw):
    header = raw[pos:pos + 8]
    (n,) = struct.unpack('<Q', header)
    (len_crc,) = struct.unpack('<I', raw[pos + 8:pos + 12])
    data = raw[pos + 12:pos + 12 + n]
    (data_crc,) = struct.unpack('<I', raw[pos + 12 + n:pos + 16 + n])
    assert len_crc == masked_crc32c(header), ('length crc', pos)
    assert data_crc == masked_crc32c(data), ('data crc', pos)
    events.append(event_pb2.Event.FromString(data))
    pos += 16 + n
assert pos == len(raw)
assert events[0].file_version == 'brain.Event:2', events[0]
acc = EventAccumulator(run_dir + '/tb', size_guidance={'scalars': 0})
acc.Reload()
got = {tag: [(s.step, s.value) for s in acc.Scalars(tag)] for tag in acc.Tags()['scalars']}
rows = [json.loads(l) for l in open(run_dir + '/run.jsonl') if l.strip()]
want = {}
train = [r for r in rows if 'loss' in r]
for tag, key in [('train/loss', 'loss'), ('train/lr', 'lr'), ('train/images_per_s', 'images_per_s'), ('train/loss_scale', 'scale')]:
    want[tag] = [(r['step'], r[key]) for r in train if key in r]
steps = {r['epoch']: r['step'] for r in train}
for tag, key in [('val/accuracy', 'test_accuracy'), ('val/top5', 'test_top5'), ('val/loss', 'test_loss')]:
    want[tag] = [(steps[r['epoch']], r[key]) for r in rows if key in r]
assert sorted(got) == sorted(want), (sorted(got), sorted(want))
for tag in want:
    assert len(want[tag]) > 0, tag
    assert [s for s, _ in got[tag]] == [s for s, _ in want[tag]], (tag, got[tag], want[tag])
    for (_, g), (_, w) in zip(got[tag], want[tag]):
        assert g == float(np.float32(w)), (tag, g, w)
print('ok', len(events), 'records,', {t: len(v) for t, v in got.items()})
)PY";
  std::string out = run_python(code, dir, py);
  INFO(out);
  REQUIRE(out.find("ok 20 records") != std::string::npos);  // 1 version + 4 x 4 train + 3 val scalars
}
