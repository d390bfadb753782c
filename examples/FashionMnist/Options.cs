using System;
using System.Globalization;
using System.IO;

namespace FashionMnist;

/// <summary>Command-line options. Unknown options and bad values are errors, never silently ignored.</summary>
public sealed class Options
{
    public const string Usage = """
        usage: FashionMnist [options]
          --model lenet5|fashionnet   network to train (default lenet5; fashionnet: batch norm + dropout, stronger)
          --epochs N                  epochs to train; 0 evaluates only (default 15)
          --batch N                   batch size (default 64)
          --lr X                      peak learning rate (default: AdamW/Adam 0.003 for lenet5, 0.002 for fashionnet; SGD 0.05)
          --optimizer adamw|adam|sgd  optimizer (default adamw); the rate follows a cosine schedule
          --seed N                    seed for initialisation, shuffling and dropout (default 1)
          --threads N                 cores to use (default: all)
          --data DIR                  folder with the four Fashion-MNIST idx files (default: the shipped copy)
          --train-limit N             train on the first N training images only (default: all 60,000)
          --test-limit N              evaluate on the first N test images only (default: all 10,000)
          --save PATH                 write the trained weights (safetensors)
          --load PATH                 read weights before training or evaluating
          --report DIR                write an HTML report with curves, confusion matrix, filters and mistakes
          --help                      show this text
        """;

    public string Model { get; private set; } = "lenet5";
    public int Epochs { get; private set; } = -1;
    public int Batch { get; private set; } = 64;
    public float LearningRate { get; private set; } = float.NaN;
    public string Optimizer { get; private set; } = "adamw";
    public int Seed { get; private set; } = 1;
    public int Threads { get; private set; } = Environment.ProcessorCount;
    public string Data { get; private set; } = DefaultDataDirectory();
    public int TrainLimit { get; private set; } = int.MaxValue;
    public int TestLimit { get; private set; } = int.MaxValue;
    public string? Save { get; private set; }
    public string? Load { get; private set; }
    public string? Report { get; private set; }
    public bool Help { get; private set; }

    public static Options Parse(string[] args)
    {
        var o = new Options();
        for (int i = 0; i < args.Length; i++)
        {
            string name = args[i];
            string Value()
            {
                if (i + 1 >= args.Length) throw new ArgumentException($"{name} needs a value.");
                return args[++i];
            }
            int Int(int min)
            {
                string v = Value();
                if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) || n < min)
                    throw new ArgumentException($"{name} must be an integer of at least {min}, not '{v}'.");
                return n;
            }
            switch (name)
            {
                case "--model":
                    o.Model = Value().ToLowerInvariant();
                    if (o.Model is not ("lenet5" or "fashionnet")) throw new ArgumentException($"unknown model '{o.Model}'; choose lenet5 or fashionnet.");
                    break;
                case "--epochs": o.Epochs = Int(0); break;
                case "--batch": o.Batch = Int(1); break;
                case "--lr":
                {
                    string v = Value();
                    if (!float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out float lr) || !(lr > 0) || float.IsInfinity(lr))
                        throw new ArgumentException($"--lr must be a positive number, not '{v}'.");
                    o.LearningRate = lr;
                    break;
                }
                case "--optimizer":
                    o.Optimizer = Value().ToLowerInvariant();
                    if (o.Optimizer is not ("adamw" or "adam" or "sgd")) throw new ArgumentException($"unknown optimizer '{o.Optimizer}'; choose adamw, adam or sgd.");
                    break;
                case "--seed": o.Seed = Int(int.MinValue); break;
                case "--threads": o.Threads = Int(1); break;
                case "--data": o.Data = Value(); break;
                case "--train-limit": o.TrainLimit = Int(1); break;
                case "--test-limit": o.TestLimit = Int(1); break;
                case "--save": o.Save = Value(); break;
                case "--load": o.Load = Value(); break;
                case "--report": o.Report = Value(); break;
                case "--help" or "-h": o.Help = true; break;
                default: throw new ArgumentException($"unknown option '{name}'.");
            }
        }
        if (o.Epochs < 0) o.Epochs = 15;
        if (o.TrainLimit < o.Batch)
            throw new ArgumentException($"--train-limit {o.TrainLimit} leaves less than one batch of {o.Batch} images.");
        if (float.IsNaN(o.LearningRate)) o.LearningRate = o.Optimizer == "sgd" ? 0.05f : o.Model == "lenet5" ? 0.003f : 0.002f;
        return o;
    }

    /// <summary>examples/data/fashion-mnist, found by walking up from the program to the repository.</summary>
    private static string DefaultDataDirectory()
    {
        for (string? dir = AppContext.BaseDirectory; dir is not null; dir = Path.GetDirectoryName(dir))
        {
            string candidate = Path.Combine(dir, "examples", "data", "fashion-mnist");
            if (Directory.Exists(candidate)) return candidate;
        }
        return Path.Combine("examples", "data", "fashion-mnist");
    }
}
