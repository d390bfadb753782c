using System;
using System.IO;
using System.Linq;

namespace FashionMnist;

/// <summary>Image-folder trees: root/train/&lt;class&gt;/&lt;image&gt; and root/test/&lt;class&gt;/&lt;image&gt;.</summary>
public static class ImageFolders
{
    public const string Expected = "an image-folder tree (train/<class>/<image>.png|jpg and test/<class>/<image>.png|jpg)";

    /// <summary>Whether the folder has train/ and test/ subfolders that hold class folders.</summary>
    public static bool Looks(string directory) =>
        new[] { "train", "test" }.All(s => Directory.Exists(Path.Combine(directory, s)) && Directory.EnumerateDirectories(Path.Combine(directory, s)).Any());

    public static DataSet Load(string directory, Func<int, (int Channels, int Height, int Width)> imageShape) =>
        throw new InvalidDataException($"'{directory}' is an image-folder tree, which this build cannot read yet.");
}
