using System;
using System.Collections.Generic;
using System.IO;

namespace Unrolled;

/// <summary>The <c>unrolled</c> command line (tools/Unrolled.Cli is a thin shell around it, so that it can be tested in process).</summary>
public static class OnnxImportCommand
{
    /// <summary>Success.</summary>
    public const int Ok = 0;
    /// <summary>The model was refused (unsupported or bad input); nothing was written.</summary>
    public const int Refused = 1;
    /// <summary>The command line was wrong.</summary>
    public const int Usage = 2;
    /// <summary>The output could not be written.</summary>
    public const int WriteFailed = 3;

    public const string HelpText =
        "unrolled: compile-ready C# from ONNX models\n" +
        "\n" +
        "Usage:\n" +
        "  unrolled import <model.onnx> --class <Name> [--namespace <N>] [--out <DIR>]\n" +
        "  unrolled --help\n" +
        "\n" +
        "import   Reads an ONNX model of a sequential CNN and writes DIR/Name.cs (the [Network] attribute\n" +
        "         declaration of a partial class, compiled by the Unrolled source generator) and\n" +
        "         DIR/Name.safetensors (its weights; load them with network.Load(\"Name.safetensors\")).\n" +
        "         Both files are written only when the whole model could be imported.\n" +
        "\n" +
        "Options:\n" +
        "  --class, -c <Name>      the C# class name (required)\n" +
        "  --namespace, -n <N>     the namespace of the class (default: none)\n" +
        "  --out, -o <DIR>         the output directory (default: the current directory)\n" +
        "  --help, -h              this text\n" +
        "\n" +
        "Operators: Conv, Relu, LeakyRelu, Sigmoid, Tanh, MaxPool, AveragePool, GlobalAveragePool, Flatten,\n" +
        "Gemm, MatMul (+ Add), BatchNormalization, LRN (odd size), Softmax, Dropout, Identity, Pad (before a\n" +
        "Conv or pooling), Reshape/Squeeze to [N, features], and the shape arithmetic exporters put around them.\n" +
        "ONNX opsets 7 to 21.\n" +
        "\n" +
        "Exit codes: 0 written, 1 model refused (the error names the node, operator and reason),\n" +
        "2 wrong command line, 3 output not writable.\n";

    /// <summary>Runs the command line; returns the process exit code.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Count == 0 || args[0] is "--help" or "-h" or "help" or "-?")
        {
            (args.Count == 0 ? stderr : stdout).Write(HelpText);
            return args.Count == 0 ? Usage : Ok;
        }
        if (args[0] != "import")
        {
            stderr.WriteLine($"unrolled: unknown command '{args[0]}'. Run 'unrolled --help'.");
            return Usage;
        }
        string? model = null, className = null, ns = null, output = null;
        for (int i = 1; i < args.Count; i++)
        {
            string a = args[i];
            string? Next()
            {
                if (i + 1 >= args.Count) { stderr.WriteLine($"unrolled import: {a} needs a value."); return null; }
                return args[++i];
            }
            switch (a)
            {
                case "--help" or "-h": stdout.Write(HelpText); return Ok;
                case "--class" or "-c": if ((className = Next()) is null) return Usage; break;
                case "--namespace" or "-n": if ((ns = Next()) is null) return Usage; break;
                case "--out" or "-o": if ((output = Next()) is null) return Usage; break;
                default:
                    if (a.StartsWith('-') && a.Length > 1) { stderr.WriteLine($"unrolled import: unknown option '{a}'. Run 'unrolled --help'."); return Usage; }
                    if (model is not null) { stderr.WriteLine($"unrolled import: one model only ('{model}' and '{a}' given)."); return Usage; }
                    model = a;
                    break;
            }
        }
        if (model is null) { stderr.WriteLine("unrolled import: no model file given. Usage: unrolled import <model.onnx> --class <Name> [--namespace <N>] [--out <DIR>]"); return Usage; }
        if (className is null) { stderr.WriteLine("unrolled import: --class <Name> is required."); return Usage; }
        try
        {
            var (cs, st) = OnnxImport.ImportToDirectory(model, className, ns, output ?? Directory.GetCurrentDirectory());
            stdout.WriteLine($"wrote {cs}");
            stdout.WriteLine($"wrote {st}");
            return Ok;
        }
        catch (OnnxImportException e)
        {
            stderr.WriteLine($"unrolled import: {e.Message}");
            stderr.WriteLine("nothing was written.");
            return Refused;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"unrolled import: cannot write the output: {e.Message}");
            return WriteFailed;
        }
    }
}
