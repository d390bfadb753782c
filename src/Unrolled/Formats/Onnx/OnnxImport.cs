using System;
using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Google.Protobuf;
using Unrolled.Formats.Onnx;
using Unrolled.Formats.Onnx.Proto;

namespace Unrolled;

/// <summary>Why an ONNX model could not be imported; nothing was written.</summary>
public sealed class OnnxImportException : Exception
{
    public OnnxImportException(string message, string? node = null, string? op = null, Exception? inner = null)
        : base(message, inner) { NodeName = node; Operator = op; }

    /// <summary>The node the problem is at, when it is at one.</summary>
    public string? NodeName { get; }

    /// <summary>That node's operator.</summary>
    public string? Operator { get; }
}

/// <summary>An imported model: the C# declaration and the weights.</summary>
public sealed class OnnxImportResult
{
    internal OnnxImportResult(string className, string? ns, string declaration, string source, byte[] weights, IReadOnlyDictionary<string, (long[] Shape, float[]? Floats, long? Counter)> tensors)
    {
        ClassName = className; Namespace = ns; Declaration = declaration; Source = source; Weights = weights; Tensors = tensors;
    }

    public string ClassName { get; }
    public string? Namespace { get; }

    /// <summary>The attributes and the class line only (no usings or namespace), for pasting or combining.</summary>
    public string Declaration { get; }

    /// <summary>The whole C# file: comment naming the source, <c>using Unrolled;</c>, namespace, declaration.</summary>
    public string Source { get; }

    /// <summary>The safetensors file's bytes, loadable with <c>network.Load</c>.</summary>
    public byte[] Weights { get; }

    /// <summary>Every tensor of the weight file by state_dict key.</summary>
    public IReadOnlyDictionary<string, (long[] Shape, float[]? Floats, long? Counter)> Tensors { get; }
}

/// <summary>
/// Reads an ONNX model of a sequential CNN and turns it into an Unrolled attribute declaration and a safetensors
/// weight file.
/// </summary>
/// <remarks>
/// Supported: opsets <see cref="MinOpset"/> to <see cref="MaxOpset"/> of the default domain; one float input
/// [N, C, H, W] or [N, F] with fixed C, H, W (the batch may be fixed or symbolic); one chain of Conv, Relu, LeakyRelu,
/// Sigmoid, Tanh, MaxPool, AveragePool, GlobalAveragePool, Flatten, Gemm, MatMul (+ Add), BatchNormalization, LRN (odd
/// size), Softmax, Dropout, Identity, Pad (constant, before a Conv or a pooling), Reshape/Squeeze to [N, features].
/// Integer shape arithmetic around Reshape and Pad (Shape, Gather, Unsqueeze, Concat, Slice, Cast, Transpose,
/// ConstantOfShape, …) is folded. Everything else is refused with an <see cref="OnnxImportException"/> naming the node.
/// </remarks>
public static class OnnxImport
{
    /// <summary>The oldest opset of the default domain accepted.</summary>
    public const int MinOpset = 7;

    /// <summary>The newest opset of the default domain accepted (operators read as specified up to it).</summary>
    public const int MaxOpset = 21;

    /// <summary>The largest model file read (protobuf's own limit is 2 GiB).</summary>
    public const long MaxFileBytes = int.MaxValue;

    /// <summary>The largest C, H, W, or features of the input accepted.</summary>
    public const long MaxDimension = 1 << 20;

    /// <summary>Imports the model file at <paramref name="path"/>.</summary>
    public static OnnxImportResult Import(string path, string className, string? ns = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists) throw new OnnxImportException($"{path}: no such file.");
            if (info.Length > MaxFileBytes) throw new OnnxImportException($"{path}: {info.Length} bytes is more than the {MaxFileBytes} an ONNX protobuf can hold.");
            bytes = File.ReadAllBytes(path);
        }
        catch (IOException e) { throw new OnnxImportException($"{path}: {e.Message}", inner: e); }
        catch (UnauthorizedAccessException e) { throw new OnnxImportException($"{path}: {e.Message}", inner: e); }
        return Import(bytes, className, ns, Path.GetFileName(path));
    }

    /// <summary>Imports a model from its bytes; <paramref name="sourceName"/> is named in the generated comment.</summary>
    public static OnnxImportResult Import(byte[] model, string className, string? ns = null, string sourceName = "model.onnx")
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(className);
        CheckIdentifier(className, "class name");
        if (ns is not null) foreach (string part in ns.Split('.')) CheckIdentifier(part, "namespace");
        ModelProto proto = Parse(model, sourceName);
        try
        {
            return new Importer(proto, className, ns, sourceName).Run();
        }
        catch (Exception e) when (e is OverflowException or IndexOutOfRangeException or ArgumentException or InvalidOperationException or InvalidCastException)
        {
            // A malformed model the checks above did not foresee: still a refusal, never a crash.
            throw new OnnxImportException($"{sourceName}: the model is malformed ({e.GetType().Name}: {e.Message}).", inner: e);
        }
    }

    /// <summary>Imports <paramref name="path"/> and writes <c>DIR/ClassName.cs</c> and <c>DIR/ClassName.safetensors</c>.
    /// Both are written under temporary names and moved into place only when both are complete; on any error
    /// nothing is left behind.</summary>
    public static (string SourcePath, string WeightsPath) ImportToDirectory(string path, string className, string? ns, string directory)
    {
        OnnxImportResult result = Import(path, className, ns);
        Directory.CreateDirectory(directory);
        string cs = Path.Combine(directory, className + ".cs"), st = Path.Combine(directory, className + ".safetensors");
        string token = Guid.NewGuid().ToString("N");
        string csTemp = Path.Combine(directory, $".{className}.cs.{token}.tmp"), stTemp = Path.Combine(directory, $".{className}.safetensors.{token}.tmp");
        try
        {
            File.WriteAllText(csTemp, result.Source, new UTF8Encoding(false));
            File.WriteAllBytes(stTemp, result.Weights);
            File.Move(stTemp, st, overwrite: true);
            File.Move(csTemp, cs, overwrite: true);
        }
        finally
        {
            if (File.Exists(csTemp)) File.Delete(csTemp);
            if (File.Exists(stTemp)) File.Delete(stTemp);
        }
        return (cs, st);
    }

    private static void CheckIdentifier(string name, string what)
    {
        bool ok = name.Length > 0 && (char.IsLetter(name[0]) || name[0] == '_') && name.All(c => char.IsLetterOrDigit(c) || c == '_');
        if (!ok) throw new OnnxImportException($"'{name}' is not a valid C# {what}.");
    }

    private static ModelProto Parse(byte[] bytes, string source)
    {
        if (bytes.Length == 0) throw new OnnxImportException($"{source}: the file is empty.");
        string? looksLike = bytes.Length >= 4 && bytes[0] == 'P' && bytes[1] == 'K' ? "a zip archive (a PyTorch .pt/.pth checkpoint or a Keras .keras file?)"
            : bytes.Length >= 8 && bytes[0] == 0x89 && bytes[1] == 'H' && bytes[2] == 'D' && bytes[3] == 'F' ? "an HDF5 file (a Keras .h5 model?)"
            : bytes.Length >= 9 && bytes[8] == '{' ? "a safetensors weight file"
            : bytes[0] == 0x80 ? "a Python pickle"
            : null;
        if (looksLike is not null)
            throw new OnnxImportException($"{source}: not an ONNX model: the file starts like {looksLike}; export it to ONNX first (torch.onnx.export, tf2onnx).");
        // An ONNX model starts with a field of ModelProto; protobuf's first byte is a tag: field number and wire type.
        int field = bytes[0] >> 3, wire = bytes[0] & 7;
        bool plausible = (field, wire) is (1, 0) or (2, 2) or (3, 2) or (4, 2) or (5, 0) or (6, 2) or (7, 2) or (8, 2) or (14, 2);
        if (!plausible)
            throw new OnnxImportException($"{source}: not an ONNX model (wrong magic: the first byte 0x{bytes[0]:x2} is no ModelProto field).");
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new OnnxImportException($"{source}: truncated or corrupt ONNX file ({e.Message}).", inner: e);
        }
        if (model.Graph is null) throw new OnnxImportException($"{source}: not an ONNX model: it has no graph.");
        if (model.IrVersion < 3) throw new OnnxImportException($"{source}: IR version {model.IrVersion} is not supported (3 or later).");
        return model;
    }

    /// <summary>Where a value comes from while walking the graph.</summary>
    private sealed class Value
    {
        public ConstTensor? Const; // a constant (initializer, folded)
        public long[]? Shape;      // a data value: its ONNX shape, dims[0] the batch
        public string? InitializerName; // for constants straight from an initializer
    }

    private enum Kind { Conv2D, Dense, MaxPool2D, AvgPool2D, GlobalAvgPool2D, Flatten, BatchNorm, Dropout, LocalResponseNorm, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax }

    private sealed class Layer
    {
        public Kind Kind;
        public string? WantedName; // from an initializer or (Unrolled models) the node name
        public string Node = "";   // the ONNX node it came from
        public string Name = "";   // final
        public List<string> Args = new();
        public List<(string Key, string Value)> Options = new();
        public string? Activation; // Conv2D / Dense
        public List<(string Suffix, long[] Shape, float[]? Floats, long? Counter)> Tensors = new();
        public bool FromMatMul;    // a Dense without bias yet, waiting for an Add
        public bool HasBias;
        public int Units;
    }

    private sealed class Importer
    {
        private readonly ModelProto _model;
        private readonly string _class;
        private readonly string? _ns;
        private readonly string _source;
        private readonly bool _ours;
        private int _opset;
        private readonly Dictionary<string, Value> _values = new(StringComparer.Ordinal);
        private readonly List<Layer> _layers = new();
        private long[]? _pendingPad; // t, l, b, r
        private float _pendingPadValue;
        private string _pendingPadNode = "";
        private bool _collapsed; // ONNX [N, C, 1, 1] after GlobalAveragePool, ours a vector of C
        private long _staticBatch = -1;
        private readonly List<string> _notes = new();

        public Importer(ModelProto model, string className, string? ns, string source)
        {
            _model = model; _class = className; _ns = ns; _source = source;
            _ours = model.ProducerName == "Unrolled";
        }

        private OnnxImportException Fail(string message) => new($"{_source}: {message}");

        private static OnnxImportException NodeFail(NodeProto n, string reason)
            => new($"node '{(n.Name.Length > 0 ? n.Name : n.Output.FirstOrDefault() ?? "?")}' ({n.OpType}): {reason}.", n.Name, n.OpType);

        public OnnxImportResult Run()
        {
            CheckOpset();
            GraphProto g = _model.Graph;
            var initializers = new Dictionary<string, TensorProto>(StringComparer.Ordinal);
            foreach (TensorProto t in g.Initializer)
            {
                if (t.Name.Length == 0) throw Fail("an initializer has no name.");
                if (!initializers.TryAdd(t.Name, t)) throw Fail($"two initializers are named '{t.Name}'.");
            }
            foreach (var (name, t) in initializers)
                _values[name] = new Value { Const = ConstFolding.Decode(t, m => Fail($"initializer '{name}': {m}.")), InitializerName = name };

            var inputs = g.Input.Where(i => !initializers.ContainsKey(i.Name)).ToList();
            if (inputs.Count != 1) throw Fail($"the graph has {inputs.Count} inputs ({string.Join(", ", inputs.Select(i => i.Name))}); a sequential network has one.");
            if (g.Output.Count != 1) throw Fail($"the graph has {g.Output.Count} outputs; a sequential network has one.");
            ValueInfoProto input = inputs[0];
            long[] inShape = InputShape(input);
            _values[input.Name] = new Value { Shape = inShape };

            foreach (NodeProto node in TopologicalOrder(g.Node))
                Visit(node, ConsumerCounts(g));

            string outputName = g.Output[0].Name;
            if (!_values.TryGetValue(outputName, out Value? output) || output.Shape is null)
                throw Fail($"the graph output '{outputName}' does not depend on the input '{input.Name}'.");
            if (_pendingPad is not null) throw NodeFail(g.Node.First(n => n.Name == _pendingPadNode), "a Pad that is not followed by a Conv or a pooling");
            if (_lrn is not null) throw NodeFail(_lrn.Start, "a square (x·x) that is not the start of a local response normalisation; a branch");
            if (_layers.Count == 0) throw Fail("the graph has no layer the importer can declare (it is the identity).");
            foreach (Layer l in _layers.Where(l => l.FromMatMul && l.Kind == Kind.Dense)) l.FromMatMul = false;
            return Emit(inShape);
        }

        private Dictionary<string, int>? _consumers;

        private static Dictionary<string, int> ConsumerCounts(GraphProto g)
        {
            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (NodeProto n in g.Node)
                foreach (string i in n.Input.Where(i => i.Length > 0).Distinct())
                    counts[i] = counts.GetValueOrDefault(i) + (n.OpType == "Shape" ? 0 : 1);
            foreach (ValueInfoProto o in g.Output) counts[o.Name] = counts.GetValueOrDefault(o.Name) + 1;
            return counts;
        }

        private void CheckOpset()
        {
            long? opset = null;
            foreach (OperatorSetIdProto o in _model.OpsetImport)
            {
                if (o.Domain is "" or "ai.onnx") opset = o.Version;
            }
            if (opset is null) throw Fail("the model imports no opset of the default ONNX domain.");
            if (opset < MinOpset) throw Fail($"opset {opset} is too old: the importer reads opsets {MinOpset} to {MaxOpset} (re-export with a newer opset_version).");
            if (opset > MaxOpset) throw Fail($"opset {opset} is too new: the importer reads opsets {MinOpset} to {MaxOpset} (re-export with opset_version={MaxOpset} or older).");
            _opset = (int)opset;
        }

        private long[] InputShape(ValueInfoProto input)
        {
            var tensor = input.Type?.TensorType;
            if (tensor is null) throw Fail($"the input '{input.Name}' is not a tensor.");
            if (tensor.ElemType != (int)TensorProto.Types.DataType.Float) throw Fail($"the input '{input.Name}' has element type {(TensorProto.Types.DataType)tensor.ElemType}; float32 is supported.");
            if (tensor.Shape is null) throw Fail($"the input '{input.Name}' has no shape: dynamic spatial sizes are not supported.");
            var dims = tensor.Shape.Dim;
            if (dims.Count != 4 && dims.Count != 2) throw Fail($"the input '{input.Name}' has rank {dims.Count}; [N, C, H, W] or [N, features] is supported.");
            var shape = new long[dims.Count];
            shape[0] = ConstTensor.Batch;
            if (dims[0].ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue) _staticBatch = dims[0].DimValue;
            string[] names = dims.Count == 4 ? new[] { "N", "C", "H", "W" } : new[] { "N", "features" };
            for (int i = 1; i < dims.Count; i++)
            {
                if (dims[i].ValueCase != TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue)
                    throw Fail($"the input '{input.Name}' has a dynamic {names[i]} ('{dims[i].DimParam}'): dynamic spatial sizes are not supported; export with a fixed size.");
                long d = dims[i].DimValue;
                if (d <= 0 || d > MaxDimension) throw Fail($"the input '{input.Name}' has an absurd {names[i]} of {d} (1 to {MaxDimension} supported).");
                shape[i] = d;
            }
            if (ConstTensor.Product(shape.Skip(1)) > ConstFolding.MaxElements) throw Fail($"the input '{input.Name}' of [{string.Join(", ", shape.Skip(1))}] has more than {ConstFolding.MaxElements} values per sample.");
            return shape;
        }

        private static IEnumerable<NodeProto> TopologicalOrder(IList<NodeProto> nodes)
        {
            var producer = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < nodes.Count; i++)
                foreach (string o in nodes[i].Output.Where(o => o.Length > 0))
                    if (!producer.TryAdd(o, i)) throw NodeFail(nodes[i], $"its output '{o}' is also produced by node '{nodes[producer[o]].Name}'");
            var pending = new int[nodes.Count];
            var dependents = new List<int>[nodes.Count];
            for (int i = 0; i < nodes.Count; i++) dependents[i] = new List<int>();
            for (int i = 0; i < nodes.Count; i++)
                foreach (string inp in nodes[i].Input.Where(x => x.Length > 0).Distinct())
                    if (producer.TryGetValue(inp, out int p)) { pending[i]++; dependents[p].Add(i); }
            var ready = new Queue<int>(Enumerable.Range(0, nodes.Count).Where(i => pending[i] == 0));
            var order = new List<NodeProto>();
            while (ready.Count > 0)
            {
                int i = ready.Dequeue();
                order.Add(nodes[i]);
                foreach (int d in dependents[i]) if (--pending[d] == 0) ready.Enqueue(d);
            }
            if (order.Count != nodes.Count)
            {
                NodeProto first = nodes[Enumerable.Range(0, nodes.Count).First(i => pending[i] > 0)];
                throw NodeFail(first, "the graph has a cycle through this node");
            }
            return order;
        }

        private void Visit(NodeProto node, Dictionary<string, int> consumers)
        {
            _consumers = consumers;
            Exception F(string m) => NodeFail(node, m);
            if (node.Domain is not ("" or "ai.onnx")) throw F($"operator of domain '{node.Domain}' is not supported");
            var view = new OnnxNodeView(node, m => F(m));
            if (_lrn is not null && node.Input.Concat(SubgraphInputs(node)).Any(_lrn.Values.Contains))
            {
                CaptureLrn(node, view);
                return;
            }
            if (node.OpType == "Mul" && node.Input.Count == 2 && node.Input[0] == node.Input[1] && _values.TryGetValue(node.Input[0], out Value? sq)
                && sq.Shape is { Length: 4 } && !_collapsed && consumers.GetValueOrDefault(node.Input[0]) == 2 && _pendingPad is null)
            {
                // x·x, the start of a local response normalisation written out (PyTorch's F.local_response_norm, Unrolled's even LRN).
                _lrn = new LrnCapture { Source = node.Input[0], Shape = sq.Shape, Start = node };
                foreach (string o in node.Output) _lrn.Values.Add(o);
                return;
            }
            var ins = new List<Value?>();
            foreach (string i in node.Input)
            {
                if (i.Length == 0) { ins.Add(null); continue; }
                if (!_values.TryGetValue(i, out Value? v)) throw F($"its input '{i}' is produced by no node, initializer or graph input");
                ins.Add(v);
            }
            var data = ins.Select((v, i) => (v, i)).Where(p => p.v?.Shape is not null).ToList();
            if (node.OpType == "Shape" && data.Count == 1)
            {
                long[] shape = data[0].v!.Shape!;
                long start = view.Int("start", 0), end = view.Int("end", shape.Length);
                if (start < 0) start += shape.Length;
                if (end < 0) end += shape.Length;
                start = Math.Clamp(start, 0, shape.Length); end = Math.Clamp(end, start, shape.Length);
                long[] part = shape.Skip((int)start).Take((int)(end - start)).ToArray();
                Set(node, 0, new Value { Const = new ConstTensor(new long[] { part.Length }, part) });
                return;
            }
            if (data.Count == 0)
            {
                if (node.OpType is "If" or "Loop" or "Scan") throw F("control flow is not supported");
                var consts = ins.Select(v => v?.Const).ToList();
                ConstTensor folded = ConstFolding.Fold(node.OpType, consts, view, _opset, m => F(m));
                Set(node, 0, new Value { Const = folded });
                return;
            }
            if (data.Count > 1) throw F("it combines two values computed from the input: a branch, which a sequential network cannot express");
            Value x = data[0].v!;
            string inName = node.Input[data[0].i];
            if (consumers.GetValueOrDefault(inName) > 1)
                throw F($"the value '{inName}' feeds {consumers[inName]} nodes: a branch, which a sequential network cannot express");
            if (data[0].i != 0 && node.OpType is not ("Add" or "Mul"))
                throw F("the input is not its first operand");
            if (_pendingPad is not null && node.OpType is not ("Conv" or "MaxPool" or "AveragePool" or "Pad"))
                throw F($"it follows Pad '{_pendingPadNode}', which the importer only folds into a following Conv, MaxPool or AveragePool");
            long[] outShape = DataNode(node, view, x.Shape!, ins, data[0].i);
            for (int o = 1; o < node.Output.Count; o++)
                if (node.Output[o].Length > 0 && consumers.GetValueOrDefault(node.Output[o]) > 0)
                    throw F($"its output #{o} ('{node.Output[o]}') is used; only the first output is supported");
            Set(node, 0, new Value { Shape = outShape });
        }

        private sealed class LrnCapture
        {
            public string Source = "";
            public long[] Shape = Array.Empty<long>();
            public NodeProto Start = null!;
            public HashSet<string> Values = new(StringComparer.Ordinal);
            public List<(NodeProto Node, List<ConstTensor?> Consts)> Chain = new();
        }

        private LrnCapture? _lrn;

        private static IEnumerable<string> SubgraphInputs(NodeProto node)
        {
            foreach (AttributeProto a in node.Attribute)
            {
                var graphs = new List<GraphProto>(a.Graphs);
                if (a.G is not null) graphs.Add(a.G);
                foreach (GraphProto g in graphs)
                    foreach (NodeProto n in g.Node)
                    {
                        foreach (string i in n.Input) yield return i;
                        foreach (string i in SubgraphInputs(n)) yield return i;
                    }
            }
        }

        /// <summary>Collects the nodes between x·x and x / (k + α·window(x²))^β (or x · (…)^−β) and, at the end,
        /// turns them into one LocalResponseNorm when they compute exactly PyTorch's window.</summary>
        private void CaptureLrn(NodeProto node, OnnxNodeView view)
        {
            LrnCapture c = _lrn!;
            Exception F(string m) => NodeFail(node, m);
            bool end = node.OpType is "Div" or "Mul" && node.Input.Count == 2 && node.Input[0] == c.Source && c.Values.Contains(node.Input[1]);
            if (!end)
            {
                if (node.Input.Contains(c.Source)) throw F("a branch: the value squared by the local response normalisation before it is used here too");
                if (node.OpType is not ("Unsqueeze" or "Reshape" or "Squeeze" or "Identity" or "If" or "Shape" or "Gather" or "Equal" or "Cast"
                    or "Pad" or "AveragePool" or "Conv" or "Mul" or "Add" or "Pow"))
                    throw F($"an operator inside what looks like a local response normalisation (from node '{c.Start.Name}') that is not part of one");
                var consts = node.Input.Select(i => i.Length > 0 && _values.TryGetValue(i, out Value? v) ? v.Const : null).ToList();
                c.Chain.Add((node, consts));
                foreach (string o in node.Output) c.Values.Add(o);
                return;
            }
            _lrn = null;
            Exception Bad(string why) => F($"a local response normalisation written out (from node '{c.Start.Name}') that the importer cannot read: {why}");
            float? Scalar(string op)
            {
                var found = c.Chain.Where(e => e.Node.OpType == op && e.Consts.Any(k => k is not null)).ToList();
                if (found.Count != 1) throw Bad($"{found.Count} {op} nodes with a constant");
                ConstTensor t = found[0].Consts.First(k => k is not null)!;
                if (t.Length != 1) throw Bad($"{op} by a constant of {t.Length} values");
                return t.AsFloats()[0];
            }
            long before = 0, after = 0, n;
            bool sum;
            foreach (var (pad, consts) in c.Chain.Where(e => e.Node.OpType == "Pad"))
            {
                long[] pads = _opset < 11 ? new OnnxNodeView(pad, m => F(m)).Ints("pads") ?? Array.Empty<long>()
                    : consts.Count > 1 && consts[1] is { } pc ? pc.AsInts(m => F(m)) : throw Bad("a Pad whose pads are not constant");
                if (pads.Length != 10) throw Bad("a Pad that is not of a 5-D value");
                for (int i = 0; i < 10; i++) if (i != 2 && i != 7 && pads[i] != 0) throw Bad("a Pad of an axis other than the channels");
                before += pads[2]; after += pads[7];
            }
            var windows = c.Chain.Where(e => e.Node.OpType is "AveragePool" or "Conv").ToList();
            if (windows.Count != 1) throw Bad($"{windows.Count} window sums");
            var (win, wconsts) = windows[0];
            var wv = new OnnxNodeView(win, m => F(m));
            if (win.OpType == "AveragePool")
            {
                long[] ks = wv.Ints("kernel_shape") ?? Array.Empty<long>();
                if (ks.Length != 3 || ks[1] != 1 || ks[2] != 1) throw Bad("an AveragePool that is not over channels only");
                if ((wv.Ints("strides") ?? new long[] { 1, 1, 1 }).Any(v => v != 1)) throw Bad("a strided AveragePool");
                if ((wv.Ints("pads") ?? new long[6]).Any(v => v != 0)) throw Bad("an AveragePool with pads");
                n = ks[0]; sum = false;
            }
            else
            {
                ConstTensor w = wconsts.Count > 1 && wconsts[1] is { } wt ? wt : throw Bad("a window Conv whose weight is not constant");
                if (w.Dims.Length != 4 || w.Dims[0] != 1 || w.Dims[1] != 1 || w.Dims[3] != 1 || w.AsFloats().Any(v => v != 1)) throw Bad("a Conv that is not a window of ones over the channels");
                if (wconsts.Count > 2 && wconsts[2] is not null) throw Bad("a window Conv with a bias");
                n = w.Dims[2]; sum = true;
                long[] p = wv.Ints("pads") ?? new long[4];
                if (p.Length != 4 || p[1] != 0 || p[3] != 0) throw Bad("a window Conv padded across pixels");
                before += p[0]; after += p[2];
                if ((wv.Ints("strides") ?? new long[] { 1, 1 }).Any(v => v != 1)) throw Bad("a strided window Conv");
            }
            if (n <= 0 || before != n / 2 || after != (n - 1) / 2)
                throw Bad($"a window of {n} channels padded {before} before and {after} after; PyTorch's LocalResponseNorm pads {n / 2} and {(n - 1) / 2}");
            float coefficient = Scalar("Mul")!.Value, k = Scalar("Add")!.Value, power = Scalar("Pow")!.Value;
            float alpha = sum ? coefficient * n : coefficient;
            float beta = node.OpType == "Div" ? power : -power;
            Layer l = Add(node, Kind.LocalResponseNorm, _ours && node.Name.Length > 0 && ValidName(node.Name) ? node.Name : null);
            l.Args.Add(Inv(n));
            l.Options.Add(("Alpha", FloatLiteral(alpha)));
            l.Options.Add(("Beta", FloatLiteral(beta)));
            l.Options.Add(("K", FloatLiteral(k)));
            Set(node, 0, new Value { Shape = c.Shape });
        }

        private void Set(NodeProto node, int index, Value v)
        {
            if (node.Output.Count <= index || node.Output[index].Length == 0) throw NodeFail(node, "it has no output");
            _values[node.Output[index]] = v;
        }

        private Layer Add(NodeProto node, Kind kind, string? wanted = null)
        {
            var l = new Layer { Kind = kind, Node = node.Name, WantedName = wanted ?? (_ours && ValidName(node.Name) ? node.Name : null) };
            _layers.Add(l);
            return l;
        }

        private static bool ValidName(string s) => s.Length > 0 && !s.Contains('.') && !s.Any(char.IsWhiteSpace) && !s.Any(char.IsControl);

        /// <summary>A layer name from a parameter's initializer name: <c>features.0.weight</c> → <c>features_0</c>.</summary>
        private static string? NameFromInitializer(string? init, string suffix)
        {
            if (init is null || !init.EndsWith("." + suffix, StringComparison.Ordinal)) return null;
            string prefix = init[..^(suffix.Length + 1)].Replace('.', '_');
            return ValidName(prefix) && prefix.All(c => c < 128 && c != '"' && c != '\\') ? prefix : null;
        }

        private ConstTensor ConstInput(NodeProto node, IReadOnlyList<Value?> ins, int i, string what, bool optional = false)
        {
            if (i >= ins.Count || ins[i] is null)
            {
                if (optional) return null!;
                throw NodeFail(node, $"its {what} is missing");
            }
            return ins[i]!.Const ?? throw NodeFail(node, $"its {what} is computed from the input; it must be a constant");
        }

        private static string Inv(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        private static string Inv(long v) => v.ToString(CultureInfo.InvariantCulture);
        private static string FloatLiteral(float f)
        {
            // The shortest double that rounds to the same float, so the attribute's (float) conversion gives f back.
            string s = ((double)f).ToString("R", CultureInfo.InvariantCulture);
            for (int digits = 1; digits <= 17; digits++)
            {
                string t = ((double)f).ToString("G" + digits, CultureInfo.InvariantCulture);
                if ((float)double.Parse(t, CultureInfo.InvariantCulture) == f) { s = t; break; }
            }
            if (!s.Contains('.') && !s.Contains('E')) s += ".0";
            return s.Replace("E-0", "E-").Replace("E+0", "E+").Replace("E", "e");
        }

        private long[] DataNode(NodeProto node, OnnxNodeView a, long[] x, IReadOnlyList<Value?> ins, int dataIndex)
        {
            Exception F(string m) => NodeFail(node, m);
            string op = node.OpType;
            bool image = x.Length == 4 && !_collapsed;
            bool vector = x.Length == 2 || _collapsed;
            Layer? last = _layers.Count > 0 ? _layers[^1] : null;
            void NeedImage() { if (!image) throw F($"it needs an [N, C, H, W] input, but its input has shape [{Dims(x)}]"); }
            void NeedVector() { if (!vector) throw F($"it needs an [N, features] input, but its input has shape [{Dims(x)}]"); }
            switch (op)
            {
                case "Identity":
                    return x;
                case "Dropout":
                {
                    a.OnlyAttributes("ratio", "seed");
                    float p = _opset < 12 ? a.Float("ratio", 0.5f) : ins.Count > 1 && ins[1] is not null ? ConstInput(node, ins, 1, "ratio").AsFloats()[0] : 0.5f;
                    if (_opset >= 12 && ins.Count > 2 && ins[2]?.Const is { } training && training.AsFloats()[0] != 0)
                        throw F("Dropout in training mode");
                    if (!(p >= 0 && p < 1)) throw F($"drop ratio {p} outside [0, 1)");
                    if (p > 0) Add(node, Kind.Dropout).Args.Add(FloatLiteral(p));
                    return x;
                }
                case "Relu": case "Sigmoid": case "Tanh": case "LeakyRelu":
                {
                    float alpha = op == "LeakyRelu" ? a.Float("alpha", 0.01f) : 0;
                    a.OnlyAttributes(op == "LeakyRelu" ? new[] { "alpha" } : Array.Empty<string>());
                    string act = op switch { "Relu" => "ReLU", "Sigmoid" => "Sigmoid", "Tanh" => "Tanh", _ => "LeakyReLU" };
                    bool fusable = last is { Kind: Kind.Conv2D or Kind.Dense, Activation: null, FromMatMul: false }
                        && (op != "LeakyRelu" || alpha == 0.01f)
                        && (!_ours || node.Name == last.Node + "." + op.ToLowerInvariant());
                    if (fusable) { last!.Activation = act; return x; }
                    Layer l = Add(node, op switch { "Relu" => Kind.ReLU, "Sigmoid" => Kind.Sigmoid, "Tanh" => Kind.Tanh, _ => Kind.LeakyReLU });
                    if (op == "LeakyRelu") l.Args.Add(FloatLiteral(alpha));
                    return x;
                }
                case "Softmax":
                {
                    a.OnlyAttributes("axis");
                    NeedVector();
                    long axis = a.Int("axis", _opset < 13 ? 1 : -1);
                    if (axis != 1 && axis != -1) throw F($"softmax over axis {axis}; only over the features (axis 1) is supported");
                    Add(node, Kind.Softmax);
                    return x;
                }
                case "Flatten":
                {
                    a.OnlyAttributes("axis");
                    long axis = a.Int("axis", 1);
                    if (axis != 1 && !(axis == -3 && x.Length == 4) && !(axis == -1 && x.Length == 2)) throw F($"Flatten at axis {axis}; only axis 1 (keep the batch) is supported");
                    return Flatten(node, x);
                }
                case "Reshape":
                {
                    a.OnlyAttributes("allowzero");
                    long[] target = (long[])ConstInput(node, ins, 1, "shape").AsInts(m => F(m)).Clone();
                    if (target.Length > 0 && _staticBatch > 0 && target[0] == _staticBatch) target[0] = ConstTensor.Batch;
                    long[] dims = ConstFolding.ReshapeDims(x, target, a.Int("allowzero", 0) != 0, m => F(m));
                    if (dims.SequenceEqual(x)) return x;
                    if (dims.Length == 2 && dims[0] == ConstTensor.Batch) return Flatten(node, x);
                    throw F($"Reshape of [{Dims(x)}] to [{Dims(dims)}]; only flattening to [N, features] is supported");
                }
                case "Squeeze":
                {
                    long[] axes = _opset >= 13 ? (ins.Count > 1 && ins[1] is not null ? ConstInput(node, ins, 1, "axes").AsInts(m => F(m)) : new long[] { 2, 3 }) : a.Ints("axes") ?? new long[] { 2, 3 };
                    var set = axes.Select(v => v < 0 ? v + x.Length : v).OrderBy(v => v).ToArray();
                    if (x.Length == 4 && x[2] == 1 && x[3] == 1 && set.SequenceEqual(new long[] { 2, 3 })) return Flatten(node, x);
                    throw F($"Squeeze of axes [{string.Join(", ", axes)}] of [{Dims(x)}]; only [N, C, 1, 1] → [N, C] is supported");
                }
                case "Pad":
                {
                    NeedImage();
                    string mode = a.String("mode") ?? "constant";
                    if (mode != "constant") throw F($"Pad mode '{mode}'; only constant (zero) padding is supported");
                    long[] pads; float value;
                    if (_opset < 11) { pads = a.Ints("pads") ?? a.Ints("paddings") ?? throw F("Pad without pads"); value = a.Float("value", 0); }
                    else
                    {
                        pads = ConstInput(node, ins, 1, "pads").AsInts(m => F(m));
                        value = ins.Count > 2 && ins[2] is not null ? ConstInput(node, ins, 2, "constant_value").AsFloats().FirstOrDefault() : 0f;
                        if (ins.Count > 3 && ins[3] is not null) throw F("Pad with axes");
                    }
                    if (pads.Length != 8) throw F($"{pads.Length} pads for a rank-4 input");
                    if (pads[0] != 0 || pads[1] != 0 || pads[4] != 0 || pads[5] != 0) throw F("padding of the batch or channel axis");
                    if (pads.Any(p => p < 0)) throw F("negative padding (cropping)");
                    if (pads.Any(p => p > MaxDimension)) throw F("absurd padding");
                    if (pads.All(p => p == 0)) return x;
                    if (_pendingPad is not null && _pendingPadValue != value) throw F("two Pads with different values");
                    _pendingPad ??= new long[4];
                    _pendingPad[0] += pads[2]; _pendingPad[1] += pads[3]; _pendingPad[2] += pads[6]; _pendingPad[3] += pads[7];
                    _pendingPadValue = value; _pendingPadNode = node.Name;
                    return new[] { x[0], x[1], x[2] + pads[2] + pads[6], x[3] + pads[3] + pads[7] };
                }
                case "Conv": return Conv(node, a, x, ins);
                case "MaxPool": case "AveragePool": return Pool(node, a, x, op == "MaxPool");
                case "GlobalAveragePool":
                    NeedImage();
                    Add(node, Kind.GlobalAvgPool2D);
                    _collapsed = true;
                    return new[] { x[0], x[1], 1, 1 };
                case "Gemm":
                {
                    a.OnlyAttributes("alpha", "beta", "transA", "transB", "broadcast");
                    NeedVector();
                    if (a.Int("transA", 0) != 0) throw F("transA = 1 (the input transposed)");
                    if (a.Float("alpha", 1) != 1) throw F($"alpha = {a.Float("alpha", 1)}; only 1 is supported");
                    ConstTensor w = ConstInput(node, ins, 1, "weight B");
                    if (w.Dims.Length != 2 || !w.IsFloat) throw F("its weight B is not a 2-D float tensor");
                    bool transB = a.Int("transB", 0) != 0;
                    long inF = transB ? w.Dims[1] : w.Dims[0], units = transB ? w.Dims[0] : w.Dims[1];
                    if (inF != x[1]) throw F($"its weight has {inF} inputs, the value has {x[1]} features");
                    float[] weight = transB ? w.Floats! : Transposed(w.Floats!, (int)w.Dims[0], (int)w.Dims[1]);
                    Layer l = DenseLayer(node, units, weight, (int)inF, NameFromInitializer(ins[1]!.InitializerName, "weight"));
                    if (ins.Count > 2 && ins[2] is not null)
                    {
                        if (a.Float("beta", 1) != 1) throw F($"beta = {a.Float("beta", 1)}; only 1 is supported");
                        AddBias(node, l, ConstInput(node, ins, 2, "bias C"), units);
                    }
                    return new[] { x[0], units };
                }
                case "MatMul":
                {
                    NeedVector();
                    ConstTensor w = ConstInput(node, ins, 1, "weight");
                    if (w.Dims.Length != 2 || !w.IsFloat) throw F("its weight is not a 2-D float tensor");
                    if (w.Dims[0] != x[1]) throw F($"its weight has {w.Dims[0]} inputs, the value has {x[1]} features");
                    Layer l = DenseLayer(node, w.Dims[1], Transposed(w.Floats!, (int)w.Dims[0], (int)w.Dims[1]), (int)w.Dims[0], NameFromInitializer(ins[1]!.InitializerName, "weight"));
                    l.FromMatMul = true;
                    return new[] { x[0], w.Dims[1] };
                }
                case "Add":
                {
                    ConstTensor b = ConstInput(node, ins, 1 - dataIndex, "addend");
                    if (last is { Kind: Kind.Dense, FromMatMul: true, HasBias: false } && vector)
                    {
                        AddBias(node, last, b, last.Units);
                        last.FromMatMul = false;
                        if (last.WantedName is null) last.WantedName = NameFromInitializer(ins[1 - dataIndex]!.InitializerName, "bias");
                        return x;
                    }
                    if (last is { Kind: Kind.Conv2D, HasBias: false, Activation: null } && image && b.Length == x[1] && b.Dims.Length >= 3 && b.Dims[^1] == 1 && b.Dims[^2] == 1)
                    {
                        last.HasBias = true;
                        last.Options.RemoveAll(o => o.Key == "Bias");
                        last.Tensors.Add(("bias", new[] { x[1] }, b.AsFloats(), null));
                        return x;
                    }
                    throw F("an Add that is not the bias of the MatMul or Conv before it");
                }
                case "BatchNormalization":
                {
                    a.OnlyAttributes("epsilon", "momentum", "spatial", "training_mode", "is_test", "consumed_inputs");
                    if (a.Int("training_mode", 0) != 0) throw F("training_mode = 1");
                    if (a.Int("spatial", 1) != 1) throw F("spatial = 0");
                    float eps = a.Float("epsilon", 1e-5f);
                    if (!(eps >= 1e-5f - 1e-12f) || !float.IsFinite(eps)) throw F($"epsilon = {eps}; the BatchNorm layer uses 1e-5, and a smaller epsilon cannot be folded into the variance");
                    if (node.Output.Count > 1 && node.Output.Skip(1).Any(o => o.Length > 0 && _consumers!.GetValueOrDefault(o) > 0)) throw F("its training outputs (running statistics) are used");
                    long c = x[1];
                    string[] what = { "scale", "bias", "mean", "var" };
                    var tensors = new float[4][];
                    for (int i = 0; i < 4; i++)
                    {
                        ConstTensor t = ConstInput(node, ins, i + 1, what[i]);
                        if (t.Length != c) throw F($"its {what[i]} has {t.Length} values for {c} channels");
                        tensors[i] = t.AsFloats();
                    }
                    if (tensors[3].Any(v => v < 0 || !float.IsFinite(v))) throw F("a negative or non-finite variance");
                    if (eps != 1e-5f)
                    {
                        // sqrt(var + eps) = sqrt((var + eps − 1e-5) + 1e-5): a larger epsilon (Keras' 1e-3) moves into the running variance.
                        for (int i = 0; i < tensors[3].Length; i++) tensors[3][i] = (float)(tensors[3][i] + ((double)eps - 1e-5));
                        _notes.Add($"node '{node.Name}': BatchNormalization epsilon {FloatLiteral(eps)} folded into running_var (+{FloatLiteral((float)(eps - 1e-5))}), the layer's epsilon being 1e-5.");
                    }
                    Layer l = Add(node, Kind.BatchNorm, NameFromInitializer(ins[1]!.InitializerName, "weight") ?? (_ours && ValidName(node.Name) ? node.Name : null));
                    l.Tensors.Add(("weight", new[] { c }, tensors[0], null));
                    l.Tensors.Add(("bias", new[] { c }, tensors[1], null));
                    l.Tensors.Add(("running_mean", new[] { c }, tensors[2], null));
                    l.Tensors.Add(("running_var", new[] { c }, tensors[3], null));
                    l.Tensors.Add(("num_batches_tracked", Array.Empty<long>(), null, 0));
                    return x;
                }
                case "LRN":
                {
                    a.OnlyAttributes("size", "alpha", "beta", "bias");
                    NeedImage();
                    long size = a.Int("size", 0);
                    if (size <= 0 || size > x[1] * 2 + 1) throw F($"size {size}");
                    if (size % 2 == 0) throw F($"even size {size}: ONNX LRN's window of an even size is shifted by one channel from PyTorch's, so no LocalResponseNorm computes it");
                    Layer l = Add(node, Kind.LocalResponseNorm);
                    l.Args.Add(Inv(size));
                    l.Options.Add(("Alpha", FloatLiteral(a.Float("alpha", 1e-4f))));
                    l.Options.Add(("Beta", FloatLiteral(a.Float("beta", 0.75f))));
                    l.Options.Add(("K", FloatLiteral(a.Float("bias", 1f))));
                    return x;
                }
                case "Transpose":
                    throw F("a Transpose of the data: a channels-last (NHWC) layout, as tf2onnx writes for Keras models, is not supported; convert with `python -m tf2onnx.convert --inputs-as-nchw <input>` so that the model takes [N, C, H, W]");
                default:
                    throw F("operator not supported by the importer");
            }
        }

        private long[] Flatten(NodeProto node, long[] x)
        {
            if (x.Length == 2) return x;
            long features = x[1] * x[2] * x[3];
            if (_collapsed) { _collapsed = false; return new[] { x[0], features }; }
            // Unrolled writes the implicit flatten of a Dense layer as "{dense}.flatten": no layer of its own.
            bool implicitDense = _ours && node.Name.EndsWith(".flatten", StringComparison.Ordinal);
            if (!implicitDense) Add(node, Kind.Flatten);
            return new[] { x[0], features };
        }

        private static float[] Transposed(float[] w, int rows, int cols)
        {
            var t = new float[w.Length];
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
            return t;
        }

        private Layer DenseLayer(NodeProto node, long units, float[] weight, int inputs, string? name)
        {
            if (units <= 0) throw NodeFail(node, "no units");
            Layer l = Add(node, Kind.Dense, name ?? (_ours && ValidName(node.Name) ? node.Name : null));
            l.Units = (int)units;
            l.Args.Add(Inv(units));
            l.Options.Add(("Bias", "false"));
            l.Tensors.Add(("weight", new[] { units, (long)inputs }, weight, null));
            _collapsed = false;
            return l;
        }

        private void AddBias(NodeProto node, Layer l, ConstTensor b, long units)
        {
            if (b.Length != units && b.Length != 1) throw NodeFail(node, $"its bias has {b.Length} values for {units} units");
            if (b.Dims.Length > 2 || (b.Dims.Length == 2 && b.Dims[0] != 1)) throw NodeFail(node, $"its bias of shape [{Dims(b.Dims)}] does not broadcast over the batch");
            float[] v = b.AsFloats();
            if (v.Length == 1 && units != 1) v = Enumerable.Repeat(v[0], (int)units).ToArray();
            l.HasBias = true;
            l.Options.RemoveAll(o => o.Key == "Bias");
            l.Tensors.Add(("bias", new[] { units }, v, null));
        }

        private static string Dims(long[] d) => string.Join(", ", d.Select(v => v == ConstTensor.Batch ? "N" : Inv(v)));

        /// <summary>Keras/TensorFlow "same" for one axis: is (before, after) its padding?</summary>
        private static bool IsSame(long size, long k, long s, long before, long after)
        {
            long o = (size + s - 1) / s;
            long total = Math.Max((o - 1) * s + k - size, 0);
            return before == total / 2 && after == total - total / 2;
        }

        /// <summary>Resolves explicit or auto pads (t, l, b, r) of a window op on an unpadded input.</summary>
        private static long[] Pads(NodeProto node, OnnxNodeView a, long h, long w, long kh, long kw, long s)
        {
            string auto = a.String("auto_pad") ?? "NOTSET";
            long[]? p = a.Ints("pads");
            switch (auto)
            {
                case "NOTSET":
                    if (p is null) return new long[4];
                    if (p.Length != 4) throw NodeFail(node, $"{p.Length} pads for a 2-D window");
                    if (p.Any(v => v < 0 || v > MaxDimension)) throw NodeFail(node, "negative or absurd pads");
                    return new[] { p[0], p[1], p[2], p[3] };
                case "VALID": return new long[4];
                case "SAME_UPPER":
                case "SAME_LOWER":
                {
                    long Total(long size, long k) => Math.Max(((size + s - 1) / s - 1) * s + k - size, 0);
                    long th = Total(h, kh), tw = Total(w, kw);
                    return auto == "SAME_UPPER" ? new[] { th / 2, tw / 2, th - th / 2, tw - tw / 2 } : new[] { th - th / 2, tw - tw / 2, th / 2, tw / 2 };
                }
                default: throw NodeFail(node, $"auto_pad '{auto}'");
            }
        }

        /// <summary>The Padding option for pads (t, l, b, r) on an h × w input: an integer, Same, or null (inexpressible).</summary>
        private static string? Padding(long[] p, long h, long w, long kh, long kw, long s, bool preferSame)
        {
            bool symmetric = p.All(v => v == p[0]);
            bool same = IsSame(h, kh, s, p[0], p[2]) && IsSame(w, kw, s, p[1], p[3]);
            if (same && (preferSame || !symmetric)) return "Padding.Same";
            if (symmetric) return Inv(p[0]);
            return null;
        }

        private void CheckStrideAndDilation(NodeProto node, OnnxNodeView a, out long stride)
        {
            long[] strides = a.Ints("strides") ?? new long[] { 1, 1 };
            if (strides.Length != 2 || strides[0] != strides[1] || strides[0] <= 0 || strides[0] > MaxDimension)
                throw NodeFail(node, $"strides [{string.Join(", ", strides)}]; only equal positive strides are supported");
            long[]? dil = a.Ints("dilations");
            if (dil is not null && dil.Any(d => d != 1)) throw NodeFail(node, $"dilations [{string.Join(", ", dil)}]; dilated windows are not supported");
            stride = strides[0];
        }

        private (long Top, long Left, long Bottom, long Right, long H, long W) TakePendingPad(long[] x)
        {
            if (_pendingPad is null) return (0, 0, 0, 0, x[2], x[3]);
            long[] p = _pendingPad;
            _pendingPad = null;
            return (p[0], p[1], p[2], p[3], x[2] - p[0] - p[2], x[3] - p[1] - p[3]);
        }

        private long[] Conv(NodeProto node, OnnxNodeView a, long[] x, IReadOnlyList<Value?> ins)
        {
            Exception F(string m) => NodeFail(node, m);
            a.OnlyAttributes("kernel_shape", "strides", "pads", "dilations", "group", "auto_pad");
            if (x.Length != 4 || _collapsed) throw F($"Conv of a [{Dims(x)}] value; [N, C, H, W] is needed");
            if (a.Int("group", 1) != 1) throw F($"group = {a.Int("group", 1)}: grouped (depthwise) convolution is not supported");
            CheckStrideAndDilation(node, a, out long s);
            ConstTensor w = ConstInput(node, ins, 1, "weight");
            if (w.Dims.Length != 4 || !w.IsFloat) throw F("its weight is not a 4-D float tensor");
            long f = w.Dims[0], kh = w.Dims[2], kw = w.Dims[3];
            long[]? ks = a.Ints("kernel_shape");
            if (ks is not null && (ks.Length != 2 || ks[0] != kh || ks[1] != kw)) throw F("kernel_shape differs from the weight's");
            if (w.Dims[1] != x[1]) throw F($"its weight expects {w.Dims[1]} channels, the input has {x[1]}");
            var pre = TakePendingPad(x);
            if (pre.Top + pre.Left + pre.Bottom + pre.Right > 0 && _pendingPadValue != 0) throw F($"it follows a Pad with value {_pendingPadValue}; a convolution pads with zeros");
            long[] own = Pads(node, a, x[2], x[3], kh, kw, s);
            long[] p = { pre.Top + own[0], pre.Left + own[1], pre.Bottom + own[2], pre.Right + own[3] };
            bool hint = node.DocString == OnnxExport.SamePaddingDoc;
            string? padding = Padding(p, pre.H, pre.W, kh, kw, s, hint || (a.String("auto_pad") ?? "").StartsWith("SAME", StringComparison.Ordinal));
            if (padding is null) throw F($"asymmetric padding (top {p[0]}, left {p[1]}, bottom {p[2]}, right {p[3]}) that is neither symmetric nor Keras' Same");
            long ho = (pre.H + p[0] + p[2] - kh) / s + 1, wo = (pre.W + p[1] + p[3] - kw) / s + 1;
            if (ho <= 0 || wo <= 0) throw F("the kernel is larger than the padded input");
            Layer l = Add(node, Kind.Conv2D, NameFromInitializer(ins[1]!.InitializerName, "weight"));
            l.Args.Add(Inv(f));
            if (kh == kw) l.Args.Add(Inv(kh)); else { l.Args.Add(Inv(kh)); l.Args.Add(Inv(kw)); }
            if (s != 1) l.Options.Add(("Stride", Inv(s)));
            if (padding != "0") l.Options.Add(("Padding", padding));
            l.Tensors.Add(("weight", w.Dims, w.Floats!, null));
            if (ins.Count > 2 && ins[2] is not null)
            {
                ConstTensor b = ConstInput(node, ins, 2, "bias");
                if (b.Length != f) throw F($"its bias has {b.Length} values for {f} filters");
                l.Tensors.Add(("bias", new[] { f }, b.AsFloats(), null));
                l.HasBias = true;
            }
            else l.Options.Add(("Bias", "false"));
            return new[] { x[0], f, ho, wo };
        }

        private long[] Pool(NodeProto node, OnnxNodeView a, long[] x, bool max)
        {
            Exception F(string m) => NodeFail(node, m);
            a.OnlyAttributes("kernel_shape", "strides", "pads", "dilations", "auto_pad", "ceil_mode", "count_include_pad", "storage_order");
            if (x.Length != 4 || _collapsed) throw F($"pooling of a [{Dims(x)}] value; [N, C, H, W] is needed");
            long[] ks = a.Ints("kernel_shape") ?? throw F("no kernel_shape");
            if (ks.Length != 2 || ks[0] != ks[1] || ks[0] <= 0) throw F($"kernel_shape [{string.Join(", ", ks)}]; only square windows are supported");
            long k = ks[0];
            CheckStrideAndDilation(node, a, out long s);
            Layer? last = _layers.Count > 0 ? _layers[^1] : null;
            var pre = TakePendingPad(x);
            bool prePadded = pre.Top + pre.Left + pre.Bottom + pre.Right > 0;
            long[] own = Pads(node, a, x[2], x[3], k, k, s);
            bool ownPadded = own.Any(v => v != 0);
            long[] p = { pre.Top + own[0], pre.Left + own[1], pre.Bottom + own[2], pre.Right + own[3] };
            string? padding;
            bool hint = node.DocString == OnnxExport.SamePaddingDoc || (a.String("auto_pad") ?? "").StartsWith("SAME", StringComparison.Ordinal);
            if (max)
            {
                if (prePadded && _pendingPadValue == 0)
                {
                    // Zero padding never wins a max over non-negative values; then it is the same as padding that never wins.
                    bool nonNegative = last is { Kind: Kind.ReLU or Kind.Sigmoid } || last is { Kind: Kind.Conv2D or Kind.Dense, Activation: "ReLU" or "Sigmoid" };
                    if (!nonNegative) throw F("it follows a zero Pad on values that may be negative; MaxPool's padding never wins, so that is not expressible");
                }
                else if (prePadded && !float.IsNegativeInfinity(_pendingPadValue)) throw F($"it follows a Pad with value {_pendingPadValue}");
                padding = Padding(p, pre.H, pre.W, k, k, s, hint);
            }
            else
            {
                bool countPad = a.Int("count_include_pad", 0) != 0;
                if (prePadded && _pendingPadValue != 0) throw F($"it follows a Pad with value {_pendingPadValue}");
                if (prePadded && ownPadded && !countPad) throw F("zero Pad before an AveragePool that excludes its own pads from the divisor");
                bool symmetric = p.All(v => v == p[0]);
                if (!prePadded && !ownPadded) padding = hint && IsSame(pre.H, k, s, 0, 0) && IsSame(pre.W, k, s, 0, 0) ? "Padding.Same" : "0";
                else if (prePadded || countPad) padding = symmetric ? Inv(p[0]) : null; // the padded zeros are counted: integer padding
                else padding = IsSame(pre.H, k, s, p[0], p[2]) && IsSame(pre.W, k, s, p[1], p[3]) ? "Padding.Same" : null; // real cells only: Keras Same
                if (padding is null) throw F($"padding (top {p[0]}, left {p[1]}, bottom {p[2]}, right {p[3]}) with count_include_pad = {(countPad ? 1 : 0)}: only symmetric counted padding or Keras' Same (not counted) is expressible");
            }
            if (padding is null) throw F($"asymmetric padding (top {p[0]}, left {p[1]}, bottom {p[2]}, right {p[3]}) that is neither symmetric nor Keras' Same");
            long Out(long size, long before, long after, bool ceil) => ceil ? (size + before + after - k + s - 1) / s + 1 : (size + before + after - k) / s + 1;
            long ho = Out(pre.H, p[0], p[2], false), wo = Out(pre.W, p[1], p[3], false);
            if (a.Int("ceil_mode", 0) != 0 && (Out(pre.H, p[0], p[2], true) != ho || Out(pre.W, p[1], p[3], true) != wo))
                throw F("ceil_mode = 1 gives a larger output than floor mode here; only floor mode is supported");
            if (ho <= 0 || wo <= 0) throw F("the window is larger than the padded input");
            Layer l = Add(node, max ? Kind.MaxPool2D : Kind.AvgPool2D);
            l.Args.Add(Inv(k));
            if (s != k) l.Options.Add(("Stride", Inv(s)));
            if (padding != "0") l.Options.Add(("Padding", padding));
            return new[] { x[0], x[1], ho, wo };
        }

        private static string Prefix(Kind k) => k switch
        {
            Kind.Conv2D => "conv", Kind.Dense => "dense", Kind.MaxPool2D => "maxpool", Kind.AvgPool2D => "avgpool",
            Kind.GlobalAvgPool2D => "gap", Kind.Flatten => "flatten", Kind.BatchNorm => "bn", Kind.Dropout => "dropout",
            Kind.LocalResponseNorm => "lrn", Kind.ReLU => "relu", Kind.LeakyReLU => "leakyrelu", Kind.Sigmoid => "sigmoid",
            Kind.Tanh => "tanh", _ => "softmax",
        };

        private OnnxImportResult Emit(long[] inShape)
        {
            // Names: the wanted one when valid and unused, else the default (kind + ordinal among that kind).
            var ordinals = new Dictionary<Kind, int>();
            var defaults = new List<string>();
            foreach (Layer l in _layers)
            {
                ordinals[l.Kind] = ordinals.GetValueOrDefault(l.Kind) + 1;
                defaults.Add(Prefix(l.Kind) + Inv(ordinals[l.Kind]));
            }
            var used = new HashSet<string>(StringComparer.Ordinal);
            var wanted = new HashSet<string>(_layers.Where(l => l.WantedName is not null).Select(l => l.WantedName!), StringComparer.Ordinal);
            for (int i = 0; i < _layers.Count; i++)
            {
                Layer l = _layers[i];
                string name = l.WantedName is { } w && !used.Contains(w) ? w : defaults[i];
                if (used.Contains(name) || (l.WantedName is null && wanted.Contains(name)))
                {
                    int n = 2;
                    while (used.Contains($"{defaults[i]}_{n}") || wanted.Contains($"{defaults[i]}_{n}")) n++;
                    name = $"{defaults[i]}_{n}";
                }
                used.Add(name);
                l.Name = name;
                if (name != defaults[i]) l.Options.Add(("Name", "\"" + name + "\""));
            }

            bool vectorOut = !(_layers[^1].Kind is Kind.Conv2D or Kind.MaxPool2D or Kind.AvgPool2D or Kind.LocalResponseNorm)
                && (_layers.Any(l => l.Kind is Kind.Dense or Kind.Flatten or Kind.GlobalAvgPool2D) || inShape.Length == 2);
            var decl = new StringBuilder();
            string loss = vectorOut ? "" : ", Loss = Loss.MeanSquaredError";
            decl.Append(inShape.Length == 4 ? $"[Network({inShape[1]}, {inShape[2]}, {inShape[3]}{loss})]\n" : $"[Network({inShape[1]}{loss})]\n");
            foreach (Layer l in _layers)
            {
                var parts = new List<string>(l.Args);
                foreach (var (key, value) in l.Options.Where(o => o.Key != "Name")) parts.Add($"{key} = {value}");
                if (l.Activation is not null) parts.Add($"Activation = Activation.{l.Activation}");
                foreach (var (key, value) in l.Options.Where(o => o.Key == "Name")) parts.Add($"{key} = {value}");
                string kind = l.Kind.ToString();
                decl.Append(parts.Count == 0 ? $"[{kind}]\n" : $"[{kind}({string.Join(", ", parts)})]\n");
            }
            decl.Append($"public partial class {_class};\n");

            string producer = _model.ProducerName.Length > 0 ? $", producer {Clean(_model.ProducerName)} {Clean(_model.ProducerVersion)}".TrimEnd() : "";
            var src = new StringBuilder();
            src.Append($"// Imported from {Clean(_source)} by `unrolled import` (ONNX IR {_model.IrVersion}, opset {_opset}{producer}).\n");
            src.Append($"// Weights: {_class}.safetensors; load them with network.Load(\"{_class}.safetensors\").\n");
            foreach (string note in _notes) src.Append($"// {Clean(note)}\n");
            src.Append("using Unrolled;\n\n");
            if (_ns is not null) src.Append($"namespace {_ns};\n\n");
            src.Append(decl);

            var tensors = new SortedDictionary<string, (long[] Shape, float[]? Floats, long? Counter)>(StringComparer.Ordinal);
            foreach (Layer l in _layers)
                foreach (var t in l.Tensors)
                    tensors[l.Name + "." + t.Suffix] = (t.Shape, t.Floats, t.Counter);
            return new OnnxImportResult(_class, _ns, decl.ToString(), src.ToString(), SafeTensorsBytes(tensors), tensors);
        }

        private static string Clean(string s) => new(s.Select(c => char.IsControl(c) ? ' ' : c).Take(200).ToArray());

        private byte[] SafeTensorsBytes(IReadOnlyDictionary<string, (long[] Shape, float[]? Floats, long? Counter)> tensors)
        {
            // As WeightFile.Save orders them: larger elements first, then by name.
            var ordered = tensors.OrderByDescending(t => t.Value.Counter is null ? 4 : 8).ThenBy(t => t.Key, StringComparer.Ordinal).ToList();
            // The header as WeightFile.Save writes it; shapes were checked to fit an int when the tensors were read.
            var infos = ordered.Select(t => new TensorInfo(t.Key, t.Value.Shape.Select(d => checked((int)d)).ToArray(),
                t.Value.Counter is null ? TensorKind.Parameter : TensorKind.Counter, 0, t.Value.Counter is null ? t.Value.Floats!.Length : 1)).ToList();
            byte[] header = WeightFile.BuildHeader(_class, infos);
            var stream = new MemoryStream();
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            stream.Write(len);
            stream.Write(header);
            Span<byte> cell = stackalloc byte[8];
            foreach (var (_, t) in ordered)
            {
                if (t.Counter is long c) { BinaryPrimitives.WriteInt64LittleEndian(cell, c); stream.Write(cell); continue; }
                foreach (float v in t.Floats!) { BinaryPrimitives.WriteSingleLittleEndian(cell, v); stream.Write(cell[..4]); }
            }
            return stream.ToArray();
        }
    }
}
